# RRG stages 1 and 2 (FILES.md "RRG"): the region detector, region features extracted once
# per split, and the region selector (+ abnormal classifier). Training resumes from
# results/checkpoints/{variant}/seed{seed}/{stage}/ (deliberately not a declared output).


rule train_detector:
    input:
        images="results/cache/mimic/images.npy",
        index="results/cache/mimic/index.parquet",
        regions="results/cache/mimic/regions.parquet",
        split=lambda wc: f"results/splits/{rrg_subsample(wc)}.parquet",
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
        model=rrg_model_params(),
        backbone_weights=RRG["backbone_weights"],
        schedule=lambda wc: RRG["variants"][wc.variant]["detector"],
        augment=RRG["augment"],
        amp=RRG["detector_amp"],
        channels_last=RRG["detector_channels_last"],
        num_workers=RRG["detector_num_workers"],
        checkpoint_dir="results/checkpoints/{variant}/seed{seed}/detector",
        device=config["device"],
        torch_threads=torch_threads,
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
        device=config["device"],
        torch_threads=torch_threads,
    script:
        "../scripts/extract_region_features.py"


rule train_selector:
    input:
        detector="results/rrg/{variant}/seed{seed}/detector/config.json",
        train=lambda wc: f"results/rrg/{wc.variant}/seed{wc.seed}/region_features/{rrg_subsample(wc)}_train.safetensors",
        valid=lambda wc: f"results/rrg/{wc.variant}/seed{wc.seed}/region_features/{rrg_subsample(wc)}_valid.safetensors",
        train_rows=lambda wc: f"results/rrg/{wc.variant}/seed{wc.seed}/region_features/{rrg_subsample(wc)}_train.parquet",
        valid_rows=lambda wc: f"results/rrg/{wc.variant}/seed{wc.seed}/region_features/{rrg_subsample(wc)}_valid.parquet",
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
        region_feature_dim=RRG["region_feature_dim"],
        abnormal_classifier=RRG["abnormal_classifier"],
        abnormal_pos_weight=RRG["abnormal_pos_weight"],
        selection_threshold=RRG["selection_threshold"],
        selection_pos_weight=lambda wc: RRG["variants"][wc.variant][
            "selection_pos_weight"
        ],
        schedule=lambda wc: RRG["variants"][wc.variant]["selector"],
        checkpoint_dir="results/checkpoints/{variant}/seed{seed}/selector",
        device=config["device"],
        torch_threads=torch_threads,
    script:
        "../scripts/train_selector.py"
