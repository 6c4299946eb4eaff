# The explorer: one static page (results/explorer/index.html + images/) over every test
# image of every RRG system, from the prediction files, the metrics JSON and the cache.


rule explorer:
    input:
        unpack(explorer_inputs),
        images="results/cache/mimic/images.npy",
        index="results/cache/mimic/index.parquet",
        findings="results/data/images.parquet",
    output:
        page=report(
            directory("results/explorer"),
            htmlindex="index.html",
            caption="../report/explorer.rst",
            category="Explorer",
        ),
    log:
        "results/logs/explorer.log",
    conda:
        ENV
    params:
        runs=explorer_runs(),
    script:
        "../scripts/explorer.py"
