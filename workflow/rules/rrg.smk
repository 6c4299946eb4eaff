# RRG stages 1 and 2 (FILES.md "RRG"): the region detector, region features extracted once
# per split, and the region selector (+ abnormal classifier). Training resumes from
# results/checkpoints/{variant}/seed{seed}/{stage}/ (deliberately not a declared output).


rule train_detector:
    input:
        unpack(train_detector_inputs),
        images="results/cache/mimic/images.npy",
        index="results/cache/mimic/index.parquet",
        regions="results/cache/mimic/regions.parquet",
    output:
        config="results/rrg/{variant}/seed{seed}/detector/config.json",
        weights="results/rrg/{variant}/seed{seed}/detector/model.safetensors",
        metrics="results/rrg/{variant}/seed{seed}/detector/metrics.tsv",
        curve="results/rrg/{variant}/seed{seed}/detector/loss_curve.png",
        run="results/rrg/{variant}/seed{seed}/detector/run.json",
    log:
        "results/logs/rrg/{variant}/seed{seed}/train_detector.log",
    conda:
        ENV
    threads: 2
    resources:
        gpu=1,
    params:
        settings=settings_of("detector", "variant"),
        checkpoint_dir="results/checkpoints/{variant}/seed{seed}/detector",
    script:
        "../scripts/train_detector.py"


rule extract_region_features:
    input:
        config="results/rrg/{variant}/seed{seed}/detector/config.json",
        weights="results/rrg/{variant}/seed{seed}/detector/model.safetensors",
        images="results/cache/mimic/images.npy",
        index="results/cache/mimic/index.parquet",
        regions="results/cache/mimic/regions.parquet",
        split="results/splits/{subsample}.parquet",
    output:
        features="results/rrg/{variant}/seed{seed}/region_features/{subsample}_{split}.safetensors",
        rows="results/rrg/{variant}/seed{seed}/region_features/{subsample}_{split}.parquet",
    log:
        "results/logs/rrg/{variant}/seed{seed}/extract_region_features/{subsample}_{split}.log",
    conda:
        ENV
    threads: 2
    resources:
        gpu=1,
    params:
        batch_size=RRG["extract_batch_size"],
    script:
        "../scripts/extract_region_features.py"


rule train_selector:
    input:
        unpack(train_selector_inputs),
        detector="results/rrg/{variant}/seed{seed}/detector/config.json",
        regions="results/cache/mimic/regions.parquet",
    output:
        config="results/rrg/{variant}/seed{seed}/selector/config.json",
        weights="results/rrg/{variant}/seed{seed}/selector/model.safetensors",
        metrics="results/rrg/{variant}/seed{seed}/selector/metrics.tsv",
        curve="results/rrg/{variant}/seed{seed}/selector/loss_curve.png",
        run="results/rrg/{variant}/seed{seed}/selector/run.json",
    log:
        "results/logs/rrg/{variant}/seed{seed}/train_selector.log",
    conda:
        ENV
    threads: 2
    resources:
        gpu=1,
    params:
        settings=settings_of("selector", "variant"),
        checkpoint_dir="results/checkpoints/{variant}/seed{seed}/selector",
    script:
        "../scripts/train_selector.py"
