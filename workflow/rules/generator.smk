# RRG stage 3 (the region-conditioned GPT-2), report generation, and the demo GPT-2
# (FILES.md "RRG", "Pretrained starting points"). GPT-2 comes from results/pretrained/gpt2
# (built here) when rrg.generator_model is "demo"; otherwise the configured local folder or
# hub id is a param, not an input.


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
        min_positions=max(
            256,
            GEN_RRG["max_sentence_tokens"],
            max(
                [v["max_new_tokens"] + 2 for v in GEN_RRG["variants"].values()] or [0]
            ),
        ),
        seed=config["synthetic"]["seed"],
    script:
        "../scripts/build_demo_gpt2.py"


rule train_generator:
    input:
        unpack(gen_gpt2_input),
        selector_config=f"{GEN_DIR}/selector/config.json",
        selector_weights=f"{GEN_DIR}/selector/model.safetensors",
        train_features=lambda wc: gen_region_features(
            gen_variant(wc)["subsample"], "train"
        )["features"],
        valid_features=lambda wc: gen_region_features(
            gen_variant(wc)["subsample"], "valid"
        )["features"],
        train_index=lambda wc: gen_region_features(
            gen_variant(wc)["subsample"], "train"
        )["features_index"],
        valid_index=lambda wc: gen_region_features(
            gen_variant(wc)["subsample"], "valid"
        )["features_index"],
        regions="results/cache/mimic/regions.parquet",
    output:
        generator=directory(f"{GEN_DIR}/generator"),
    log:
        "results/logs/rrg/{variant}/seed{seed}/train_generator.log",
    conda:
        ENV
    threads: 4
    resources:
        gpu=1,
    params:
        gpt2_source=gen_gpt2_source(),
        schedule=lambda wc: gen_variant(wc)["generator"],
        freeze=GEN_RRG["freeze_generator"],
        feature_dim=GEN_RRG["region_feature_dim"],
        input_kind=GEN_RRG["generator_input"],
        hidden_dim=GEN_RRG["conditioning_dim"],
        max_sentence_tokens=GEN_RRG["max_sentence_tokens"],
        amp=GEN_RRG["generator_amp"],
        device=config["device"],
        checkpoint_dir="results/checkpoints/{variant}/seed{seed}/generator",
        torch_threads=torch_threads,
    script:
        "../scripts/train_generator.py"


rule generate_reports:
    input:
        generator=f"{GEN_DIR}/generator",
        selector_config=f"{GEN_DIR}/selector/config.json",
        selector_weights=f"{GEN_DIR}/selector/model.safetensors",
        features=gen_region_features(test_subsample(), "test")["features"],
        features_index=gen_region_features(test_subsample(), "test")["features_index"],
        regions="results/cache/mimic/regions.parquet",
        images="results/data/images.parquet",
        cache_index="results/cache/mimic/index.parquet",  # letterbox geometry: boxes in original pixels
    output:
        predictions=f"{GEN_DIR}/predictions_test.parquet",
        reports=f"{GEN_DIR}/reports_test.parquet",
        run_info=f"{GEN_DIR}/reports_test.run.json",
    log:
        "results/logs/rrg/{variant}/seed{seed}/generate_reports.log",
    conda:
        ENV
    threads: 4
    resources:
        gpu=1,
    params:
        num_beams=GEN_RRG["num_beams"],
        max_new_tokens=lambda wc: gen_variant(wc)["max_new_tokens"],
        batch_size=GEN_RRG["generation_batch_size"],
        dedup=GEN_RRG["dedup"],
        amp=GEN_RRG["generator_amp"],
        device=config["device"],
        torch_threads=torch_threads,
    script:
        "../scripts/generate_reports.py"


rule generate_reports_for:
    input:
        generator=f"{GEN_DIR}/generator",
        selector_config=f"{GEN_DIR}/selector/config.json",
        selector_weights=f"{GEN_DIR}/selector/model.safetensors",
        features=f"{GEN_DIR}/region_features/{{subsample}}_{{split}}.safetensors",
        features_index=f"{GEN_DIR}/region_features/{{subsample}}_{{split}}.parquet",
        images="results/data/images.parquet",
        cache_index="results/cache/mimic/index.parquet",  # letterbox geometry: boxes in original pixels
    output:
        reports=f"{GEN_DIR}/reports_{{subsample}}_{{split}}.parquet",
        run_info=f"{GEN_DIR}/reports_{{subsample}}_{{split}}.run.json",
    log:
        "results/logs/rrg/{variant}/seed{seed}/generate_reports_{subsample}_{split}.log",
    conda:
        ENV
    threads: 4
    resources:
        gpu=1,
    params:
        num_beams=GEN_RRG["num_beams"],
        max_new_tokens=lambda wc: gen_variant(wc)["max_new_tokens"],
        batch_size=GEN_RRG["generation_batch_size"],
        dedup=GEN_RRG["dedup"],
        amp=GEN_RRG["generator_amp"],
        device=config["device"],
        torch_threads=torch_threads,
    script:
        "../scripts/generate_reports.py"
