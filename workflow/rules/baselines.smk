# Table 1's S&T and AdaAtt and Table 2's ConVIRT, trained on our data (docs/BASELINES.md).
# S&T / AdaAtt train on baselines.<model>.subsample (default: RRG-opt's) from the same
# letterboxed cache and are scored by rule evaluate_rrg as systems `show_tell` / `adaatt`.
# ConVIRT pretrains on R-CLIP's radiologist texts with R-CLIP's encoders and loop, from a
# random (and, with rclip.image_weights, an ImageNet) image encoder; rule train_probe probes
# it as encoder convirt_<init>. Training resumes from results/checkpoints/ (not an output).


include: "helpers/baselines.smk"


rule train_report_baseline:
    input:
        images="results/data/images.parquet",
        split=lambda wc: f"results/splits/{baseline_subsample(wc.baseline)}.parquet",
        cache_images="results/cache/mimic/images.npy",
        cache_index="results/cache/mimic/index.parquet",
    output:
        model=directory("results/rrg/baselines/{baseline}/seed{seed}/model"),
    log:
        "results/logs/rrg/baselines/{baseline}/seed{seed}/train_report_baseline.log",
    wildcard_constraints:
        baseline="show_tell|adaatt",
    conda:
        ENV
    threads: 2
    resources:
        gpu=1,
    params:
        settings=lambda wc: baseline_settings(wc.baseline),
        checkpoint_dir="results/checkpoints/baselines/{baseline}/seed{seed}",
        device=config["device"],
        torch_threads=torch_threads,
    script:
        "../scripts/train_report_baseline.py"


rule generate_report_baseline:
    input:
        model="results/rrg/baselines/{baseline}/seed{seed}/model",
        images="results/data/images.parquet",
        split=lambda wc: f"results/splits/{baseline_subsample(wc.baseline)}.parquet",
        cache_images="results/cache/mimic/images.npy",
        cache_index="results/cache/mimic/index.parquet",
    output:
        reports="results/rrg/baselines/{baseline}/seed{seed}/reports_test.parquet",
    log:
        "results/logs/rrg/baselines/{baseline}/seed{seed}/generate_report_baseline.log",
    wildcard_constraints:
        baseline="show_tell|adaatt",
    conda:
        ENV
    threads: 2
    resources:
        gpu=1,
    params:
        beam_size=lambda wc: BASELINES[wc.baseline]["beam_size"],
        max_length=lambda wc: BASELINES[wc.baseline]["max_length"],
        batch_size=lambda wc: BASELINES[wc.baseline]["generation_batch_size"],
        device=config["device"],
        torch_threads=torch_threads,
    script:
        "../scripts/generate_report_baseline.py"


rule train_convirt:
    input:
        unpack(lambda wc: rclip_bert_input()),
        unpack(convirt_image_weights_input),
        texts="results/rclip/texts_radiologist.parquet",
        backtranslations="results/rclip/backtranslations_radiologist.parquet",
        cache_images="results/cache/mimic/images.npy",
        cache_index="results/cache/mimic/index.parquet",
    output:
        model=directory("results/rclip/convirt/{init}/seed{seed}/clip"),
    log:
        "results/logs/rclip/convirt/{init}/seed{seed}/train_convirt.log",
    wildcard_constraints:
        init="random_init|imagenet_init",
    conda:
        ENV
    threads: 4
    resources:
        gpu=1,
    params:
        settings=convirt_settings(),
        text_model=rclip_text_model(),
        text_source=lambda wc: f"convirt {wc.init}, radiologist",
        checkpoint_dir="results/checkpoints/rclip/convirt/{init}/seed{seed}",
        device=config["device"],
        torch_threads=torch_threads,
    script:
        "../scripts/train_clip.py"
