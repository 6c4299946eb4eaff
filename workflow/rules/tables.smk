# Tables 1 and 2, Figure 4 and the probes' ROC curves. Tables and figures format values
# read from the metrics JSON (rules/evaluate.smk); they compute nothing. Their rows are
# built by crrg_clip.tables (table1_entries / table2_entries).


rule table1:
    input:
        unpack(table1_inputs),
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
        entries=table1_entries(config, SYSTEMS),
        test_subsample=SYSTEMS.test_subsample(),
        labelers=table_labelers(),
        config=config,
        command=regenerate("results/table1.csv"),
    script:
        "../scripts/table1.py"


rule table2:
    input:
        unpack(table2_inputs),
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
        entries=table2_entries(config, SYSTEMS),
        config=config,
        command=regenerate("results/table2.csv"),
    script:
        "../scripts/table2.py"


rule figure4:
    input:
        unpack(figure4_inputs),
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
        unpack(roc_curves_inputs),
    output:
        png=report(
            "results/figures/roc.png", caption="../report/roc.rst", category="Figures"
        ),
    log:
        "results/logs/roc_curves.log",
    conda:
        ENV
    params:
        labels=roc_labels(SYSTEMS),
    script:
        "../scripts/figure_roc.py"
