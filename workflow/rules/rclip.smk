# R-CLIP (FILES.md "R-CLIP"): the CLIP training texts, CLIP pretraining per text source and
# seed, and the RSNA linear probe per encoder and seed. The demo BERT is built here when
# rclip.text_model is "demo"; otherwise the configured local folder or hub id is a param.
#
# Texts: results/rclip/texts_{text}.parquet holds the subsample's train images *and*
# its valid images (column `split`), so back_translate covers the validation texts too.
# `generated` texts are the reports of RRG variant rclip.generated_by, seed
# rclip.generated_seed (default: the first of `seeds`); CLIP models of every seed train on
# that one text file, which keeps FILES.md's file names.


rule build_demo_bert:
    input:
        images="results/data/images.parquet",
    output:
        bert=directory("results/pretrained/bert"),
    log:
        "results/logs/pretrained/build_demo_bert.log",
    conda:
        ENV
    params:
        vocab_size=config["demo_models"]["vocab_size"],
        sizes=config["demo_models"]["bert"],
        max_positions=max(512, RCLIP["max_text_tokens"]),
        seed=config["synthetic"]["seed"],
    script:
        "../scripts/build_demo_bert.py"


rule clip_texts:
    input:
        unpack(clip_texts_inputs),
    output:
        texts="results/rclip/texts_{text}.parquet",
        exclusions="results/qc/parts/clip_texts_{text}.tsv",
        kept="results/qc/parts/clip_texts_{text}.kept.tsv",
    log:
        "results/logs/rclip/clip_texts_{text}.log",
    conda:
        ENV
    params:
        splits=CLIP_TEXT_SPLITS,
    script:
        "../scripts/clip_texts.py"


rule train_clip:
    input:
        unpack(train_clip_inputs),
        texts="results/rclip/texts_{text}.parquet",
        backtranslations="results/rclip/backtranslations_{text}.parquet",
        cache_images="results/cache/mimic/images.npy",
        cache_index="results/cache/mimic/index.parquet",
    output:
        model=directory("results/rclip/{text}/seed{seed}/clip"),
    log:
        "results/logs/rclip/{text}/seed{seed}/train_clip.log",
    conda:
        ENV
    threads: 4
    resources:
        gpu=1,
    params:
        settings=settings_of("clip"),
        checkpoint_dir="results/checkpoints/rclip/{text}/seed{seed}",
    script:
        "../scripts/train_clip.py"


rule train_probe:
    input:
        unpack(train_probe_inputs),
        cache_images="results/cache/rsna/images.npy",
        cache_index="results/cache/rsna/index.parquet",
    output:
        config="results/rclip/probe/{encoder}/seed{seed}/config.json",
        weights="results/rclip/probe/{encoder}/seed{seed}/model.safetensors",
        metrics="results/rclip/probe/{encoder}/seed{seed}/metrics.tsv",
        loss_curve="results/rclip/probe/{encoder}/seed{seed}/loss_curve.png",
        predictions="results/rclip/probe/{encoder}/seed{seed}/predictions_test.parquet",
        run_info="results/rclip/probe/{encoder}/seed{seed}/run.json",
    log:
        "results/logs/rclip/probe/{encoder}/seed{seed}/train_probe.log",
    conda:
        ENV
    threads: 4
    resources:
        gpu=1,
    params:
        settings=settings_of("probe"),
        checkpoint_dir="results/checkpoints/probe/{encoder}/seed{seed}",
    script:
        "../scripts/train_probe.py"
