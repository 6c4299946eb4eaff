# Input functions and constants for workflow/rules/generator.smk (kept apart from the
# rules so each rule file reads as a list of signatures).
GEN_RRG = config["rrg"]
GEN_DIR = "results/rrg/{variant}/seed{seed}"


def gen_variant(wildcards):
    return GEN_RRG["variants"][wildcards.variant]


def gen_gpt2_input(wildcards):
    return (
        {"gpt2": "results/pretrained/gpt2"}
        if GEN_RRG["generator_model"] == "demo"
        else {}
    )


def gen_gpt2_source():
    return (
        "results/pretrained/gpt2"
        if GEN_RRG["generator_model"] == "demo"
        else GEN_RRG["generator_model"]
    )


def gen_region_features(subsample, split):
    base = f"{GEN_DIR}/region_features/{subsample}_{split}"
    return {"features": f"{base}.safetensors", "features_index": f"{base}.parquet"}
