# RRG stage 3 (the region-conditioned GPT-2), report generation, and the demo GPT-2
# (FILES.md "RRG", "Pretrained starting points"). GPT-2 comes from results/pretrained/gpt2
# (built here) when rrg.generator_model is "demo"; otherwise the configured local folder or
# hub id is part of the generator's settings, not an input.


rule build_demo_gpt2:
    input:
        images="results/data/images.parquet",
        regions="results/data/regions.parquet",
    output:
        gpt2=directory("results/pretrained/gpt2"),
    log:
        "results/logs/pretrained/build_demo_gpt2.log",
    conda:
        ENV
    params:
        vocab_size=config["demo_models"]["vocab_size"],
        sizes=config["demo_models"]["gpt2"],
        min_positions=demo_gpt2_positions(),
        seed=config["synthetic"]["seed"],
    script:
        "../scripts/build_demo_gpt2.py"


rule train_generator:
    input:
        unpack(train_generator_inputs),
        selector_config="results/rrg/{variant}/seed{seed}/selector/config.json",
        selector_weights="results/rrg/{variant}/seed{seed}/selector/model.safetensors",
        regions="results/cache/mimic/regions.parquet",
    output:
        generator=directory("results/rrg/{variant}/seed{seed}/generator"),
    log:
        "results/logs/rrg/{variant}/seed{seed}/train_generator.log",
    conda:
        ENV
    threads: 4
    resources:
        gpu=1,
    params:
        settings=settings_of("generator", "variant"),
        checkpoint_dir="results/checkpoints/{variant}/seed{seed}/generator",
    script:
        "../scripts/train_generator.py"


# Reports (no predictions) for any subsample split: the R-CLIP-opt training texts.
rule generate_reports_for:
    input:
        unpack(generate_reports_inputs),
        generator="results/rrg/{variant}/seed{seed}/generator",
        selector_config="results/rrg/{variant}/seed{seed}/selector/config.json",
        selector_weights="results/rrg/{variant}/seed{seed}/selector/model.safetensors",
        images="results/data/images.parquet",
        cache_index="results/cache/mimic/index.parquet",  # letterbox geometry: boxes in original pixels
    output:
        reports="results/rrg/{variant}/seed{seed}/reports_{subsample}_{split}.parquet",
        run_info="results/rrg/{variant}/seed{seed}/reports_{subsample}_{split}.run.json",
    log:
        "results/logs/rrg/{variant}/seed{seed}/generate_reports_{subsample}_{split}.log",
    conda:
        ENV
    threads: 4
    resources:
        gpu=1,
    params:
        settings=settings_of("generation", "variant"),
    script:
        "../scripts/generate_reports.py"


# The common test split's reports and per-region predictions (Table 1, Figure 4, explorer).
use rule generate_reports_for as generate_reports with:
    input:
        unpack(generate_reports_inputs),
        generator="results/rrg/{variant}/seed{seed}/generator",
        selector_config="results/rrg/{variant}/seed{seed}/selector/config.json",
        selector_weights="results/rrg/{variant}/seed{seed}/selector/model.safetensors",
        images="results/data/images.parquet",
        cache_index="results/cache/mimic/index.parquet",
        regions="results/cache/mimic/regions.parquet",
    output:
        predictions="results/rrg/{variant}/seed{seed}/predictions_test.parquet",
        reports="results/rrg/{variant}/seed{seed}/reports_test.parquet",
        run_info="results/rrg/{variant}/seed{seed}/reports_test.run.json",
    log:
        "results/logs/rrg/{variant}/seed{seed}/generate_reports.log",
