# Ingest, join, QC, subsamples and image caches (FILES.md "Ingest and QC", "Subsamples",
# "Image cache"). Every step writes its exclusions to results/qc/parts/{step}.tsv and its
# kept counts to results/qc/parts/{step}.kept.tsv; qc_summary gathers them.

QC_STEPS = ["reports", "mimic_images", "imagenome", "rsna"] + [
    f"scene_graphs-{i}" for i in SCENE_GRAPH_SHARDS
]


rule ingest_reports:
    input:
        manifest=demo_data_manifest(),
    output:
        reports="results/data/reports.parquet",
        exclusions="results/qc/parts/reports.tsv",
        kept="results/qc/parts/reports.kept.tsv",
    log:
        "results/logs/data/ingest_reports.log",
    conda:
        ENV
    params:
        root=data_root("mimic_cxr_reports"),
    script:
        "../scripts/ingest_reports.py"


rule ingest_mimic_images:
    input:
        manifest=demo_data_manifest(),
    output:
        images="results/data/mimic_images.parquet",
        exclusions="results/qc/parts/mimic_images.tsv",
        kept="results/qc/parts/mimic_images.kept.tsv",
    log:
        "results/logs/data/ingest_mimic_images.log",
    conda:
        ENV
    threads: 4
    params:
        root=data_root("mimic_cxr_jpg"),
    script:
        "../scripts/ingest_mimic_images.py"


rule parse_scene_graphs:
    input:
        manifest=demo_data_manifest(),
    output:
        regions="results/data/scene_graphs/shard-{shard}.parquet",
        exclusions="results/qc/parts/scene_graphs-{shard}.tsv",
        kept="results/qc/parts/scene_graphs-{shard}.kept.tsv",
    log:
        "results/logs/data/parse_scene_graphs/shard-{shard}.log",
    conda:
        ENV
    threads: 2
    params:
        root=data_root("imagenome"),
        metadata=str(
            Path(data_root("mimic_cxr_jpg")) / "mimic-cxr-2.0.0-metadata.csv.gz"
        ),
        n_shards=len(SCENE_GRAPH_SHARDS),
    script:
        "../scripts/parse_scene_graphs.py"


rule gather_regions:
    input:
        shards=expand(
            "results/data/scene_graphs/shard-{shard}.parquet", shard=SCENE_GRAPH_SHARDS
        ),
    output:
        regions="results/data/regions.parquet",
    log:
        "results/logs/data/gather_regions.log",
    conda:
        ENV
    script:
        "../scripts/gather_regions.py"


rule join_imagenome:
    input:
        images="results/data/mimic_images.parquet",
        reports="results/data/reports.parquet",
        regions="results/data/regions.parquet",
    output:
        images="results/data/images.parquet",
        exclusions="results/qc/parts/imagenome.tsv",
        kept="results/qc/parts/imagenome.kept.tsv",
    log:
        "results/logs/data/join_imagenome.log",
    conda:
        ENV
    params:
        root=data_root("imagenome"),
    script:
        "../scripts/join_imagenome.py"


rule ingest_rsna:
    input:
        manifest=demo_data_manifest(),
    output:
        rsna="results/data/rsna.parquet",
        exclusions="results/qc/parts/rsna.tsv",
        kept="results/qc/parts/rsna.kept.tsv",
    log:
        "results/logs/data/ingest_rsna.log",
    conda:
        ENV
    threads: 4
    params:
        root=data_root("rsna"),
        test_size=config["rsna"]["test_size"],
        seed=config["rsna"]["split_seed"],
        max_rows=config["rsna"]["max_rows"],
        train_subset=config["rsna"]["train_subset"],
    script:
        "../scripts/ingest_rsna.py"


rule qc_summary:
    input:
        exclusions=expand("results/qc/parts/{step}.tsv", step=QC_STEPS),
        kept=expand("results/qc/parts/{step}.kept.tsv", step=QC_STEPS),
    output:
        exclusions="results/qc/exclusions.tsv",
        summary="results/qc/summary.tsv",
    log:
        "results/logs/qc/qc_summary.log",
    conda:
        ENV
    params:
        max_excluded_fraction=config["qc"]["max_excluded_fraction"],
    script:
        "../scripts/qc_summary.py"


rule subsample:
    input:
        images="results/data/images.parquet",
    output:
        split="results/splits/{subsample}.parquet",
        ids=directory("results/splits/{subsample}.ids"),
    log:
        "results/logs/splits/{subsample}.log",
    conda:
        ENV
    params:
        sizes=subsample_sizes,
        seed=subsample_seed,
    script:
        "../scripts/subsample.py"


rule cache_mimic:
    input:
        subsamples=expand(
            "results/splits/{subsample}.parquet", subsample=config["subsamples"]
        ),
        images="results/data/mimic_images.parquet",
        regions="results/data/regions.parquet",
    output:
        images="results/cache/mimic/images.npy",
        index="results/cache/mimic/index.parquet",
        regions="results/cache/mimic/regions.parquet",
    log:
        "results/logs/cache/cache_mimic.log",
    conda:
        ENV
    threads: 4
    params:
        root=DATA["mimic_cxr_jpg"],
        size=config["image_cache"]["mimic_size"],
        draft=config["image_cache"]["jpeg_draft"],
    script:
        "../scripts/cache_mimic.py"


rule cache_rsna:
    input:
        rsna="results/data/rsna.parquet",
    output:
        images="results/cache/rsna/images.npy",
        index="results/cache/rsna/index.parquet",
    log:
        "results/logs/cache/cache_rsna.log",
    conda:
        ENV
    threads: 4
    params:
        root=DATA["rsna"],
        size=config["image_cache"]["rsna_size"],
    script:
        "../scripts/cache_rsna.py"
