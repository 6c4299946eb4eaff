# Table 1's S&T and AdaAtt and Table 2's ConVIRT, trained on our data (docs/BASELINES.md).
# S&T / AdaAtt train on baselines.<model>.subsample (default: RRG-opt's) from the same
# letterboxed cache and are scored by rule evaluate_rrg as systems `show_tell` / `adaatt`.
# ConVIRT pretrains on R-CLIP's radiologist texts with R-CLIP's encoders and loop, from a
# random (and, with rclip.image_weights, an ImageNet) image encoder; rule train_probe probes
# it as encoder convirt_<init>. Training resumes from results/checkpoints/ (not an output).


rule train_report_baseline:
    input:
        unpack(report_baseline_inputs),
        images="results/data/images.parquet",
        cache_images="results/cache/mimic/images.npy",
        cache_index="results/cache/mimic/index.parquet",
    output:
        model=directory("results/rrg/baselines/{baseline}/seed{seed}/model"),
    log:
        "results/logs/rrg/baselines/{baseline}/seed{seed}/train_report_baseline.log",
    conda:
        ENV
    threads: 2
    resources:
        gpu=1,
    params:
        settings=settings_of("report_baseline", "baseline"),
        checkpoint_dir="results/checkpoints/baselines/{baseline}/seed{seed}",
    script:
        "../scripts/train_report_baseline.py"


rule generate_report_baseline:
    input:
        unpack(report_baseline_inputs),
        model="results/rrg/baselines/{baseline}/seed{seed}/model",
        images="results/data/images.parquet",
        cache_images="results/cache/mimic/images.npy",
        cache_index="results/cache/mimic/index.parquet",
    output:
        reports="results/rrg/baselines/{baseline}/seed{seed}/reports_test.parquet",
    log:
        "results/logs/rrg/baselines/{baseline}/seed{seed}/generate_report_baseline.log",
    conda:
        ENV
    threads: 2
    resources:
        gpu=1,
    params:
        settings=settings_of("report_baseline", "baseline"),
        batch_size=baseline_generation_batch_size,
    script:
        "../scripts/generate_report_baseline.py"


rule train_convirt:
    input:
        unpack(train_convirt_inputs),
        texts="results/rclip/texts_radiologist.parquet",
        backtranslations="results/rclip/backtranslations_radiologist.parquet",
        cache_images="results/cache/mimic/images.npy",
        cache_index="results/cache/mimic/index.parquet",
    output:
        model=directory("results/rclip/convirt/{init}/seed{seed}/clip"),
    log:
        "results/logs/rclip/convirt/{init}/seed{seed}/train_convirt.log",
    conda:
        ENV
    threads: 4
    resources:
        gpu=1,
    params:
        settings=settings_of("convirt", "init"),
        text_source=convirt_text_source,
        checkpoint_dir="results/checkpoints/rclip/convirt/{init}/seed{seed}",
    script:
        "../scripts/train_clip.py"
