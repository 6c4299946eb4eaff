# The built-in synthetic dataset (default config): the four source datasets written in
# their real layouts (docs/FORMATS.md) under results/demo_data/, plus a manifest of sizes,
# exact counts and planted faults. The four roots are directories written beside the
# manifest; ingest rules depend on the manifest (common.smk: demo_data_manifest()).


rule demo_data:
    output:
        manifest="results/demo_data/manifest.json",
    log:
        "results/logs/demo_data.log",
    conda:
        ENV
    params:
        reports_root=config["data"]["mimic_cxr_reports"],
        jpg_root=config["data"]["mimic_cxr_jpg"],
        imagenome_root=config["data"]["imagenome"],
        rsna_root=config["data"]["rsna"],
        synthetic=config["synthetic"],
    script:
        "../scripts/write_demo_data.py"
