# Tables 1 and 2, Figure 4 and the probes' ROC curves. Tables and figures format values
# read from the metrics JSON (rules/evaluate.smk); they compute nothing.


rule table1:
    input:
        summaries=rrg_summaries(),
        metrics=rrg_metrics_files(),
        comparisons=table_comparisons(table1_entries()),
    output:
        csv=report(
            "results/table1.csv", caption="../report/table1.rst", category="Tables"
        ),
        md="results/table1.md",
        provenance="results/table1.provenance.json",
    log:
        "results/logs/table1.log",
    conda:
        ENV
    params:
        entries=table1_entries(),
        test_subsample=test_subsample(),
        labelers=["rule-based"]
        + (["CheXbert"] if EVAL["chexbert"]["checkpoint"] else []),
        config=config,
        command=regenerate("results/table1.csv"),
    script:
        "../scripts/table1.py"


rule table2:
    input:
        summaries=probe_summaries(),
        metrics=probe_metrics_files(),
        comparisons=table_comparisons(table2_entries()),
    output:
        csv=report(
            "results/table2.csv", caption="../report/table2.rst", category="Tables"
        ),
        md="results/table2.md",
        provenance="results/table2.provenance.json",
    log:
        "results/logs/table2.log",
    conda:
        ENV
    params:
        entries=table2_entries(),
        config=config,
        command=regenerate("results/table2.csv"),
    script:
        "../scripts/table2.py"


rule figure4:
    input:
        predictions=f"results/rrg/{EVAL['figure4_variant'] or main_variant()}/seed{SEEDS[0]}/predictions_test.parquet",
        images="results/cache/mimic/images.npy",
        index="results/cache/mimic/index.parquet",
    output:
        png=report(
            "results/figure4.png", caption="../report/figure4.rst", category="Figures"
        ),
        csv="results/figure4.csv",
    log:
        "results/logs/figure4.log",
    conda:
        ENV
    params:
        dicom_id=EVAL["figure4_dicom_id"],
    script:
        "../scripts/figure4.py"


rule roc_curves:
    input:
        metrics=probe_metrics_files(),
    output:
        png=report(
            "results/figures/roc.png", caption="../report/roc.rst", category="Figures"
        ),
    log:
        "results/logs/roc_curves.log",
    conda:
        ENV
    params:
        labels=[
            f"{PROBE_ROWS[e][0]} {PROBE_ROWS[e][1]}"
            for e in probe_encoders()
            for _ in SEEDS
        ],
    script:
        "../scripts/figure_roc.py"
