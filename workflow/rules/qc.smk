# The training-time half of the QC accounting: images left out of CLIP training (no text)
# and back-translations that fell back to the original text, beside the ingest summary.


rule qc_training_summary:
    input:
        ingest="results/qc/summary.tsv",
        exclusions=expand("results/qc/parts/clip_texts_{text}.tsv", text=TEXT_SOURCES),
        kept=expand("results/qc/parts/clip_texts_{text}.kept.tsv", text=TEXT_SOURCES),
        backtranslation=expand(
            "results/qc/backtranslation_{text}.tsv", text=TEXT_SOURCES
        ),
        # what each RRG stage left out (summary.left_out of its run.json; the generator's is in its folder)
        rrg_runs=expand(
            "results/rrg/{variant}/seed{seed}/{stage}",
            variant=VARIANTS,
            seed=SEEDS,
            stage=["detector/run.json", "selector/run.json", "generator"],
        ),
    output:
        exclusions="results/qc/training_exclusions.tsv",
        summary="results/qc/training_summary.tsv",
    log:
        "results/logs/qc/qc_training_summary.log",
    conda:
        ENV
    script:
        "../scripts/qc_training_summary.py"
