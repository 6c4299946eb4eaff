# Input functions, one per rule that needs one (named after the rule), for
# `input: unpack(<rule>_inputs)`. File names of systems and encoders come from
# crrg_clip.systems (SYSTEMS); a "demo" model source is an input (built by the workflow),
# any other is a param (crrg_clip.settings.model_source).


def split_file(subsample):
    return f"results/splits/{subsample}.parquet"


def region_features(variant, seed, subsample, split):
    base = f"results/rrg/{variant}/seed{seed}/region_features/{subsample}_{split}"
    return {"features": f"{base}.safetensors", "rows": f"{base}.parquet"}


def demo_model_inputs(**sources):
    """``{input name: built folder}`` for each model source that is "demo"."""
    return {
        name: DEMO_MODEL_DIRS[kind]
        for name, (kind, value) in sources.items()
        if value == "demo"
    }


def image_weights_inputs():
    # an input, not a param: replacing the weights file reruns what was trained from it
    return {"image_weights": RCLIP["image_weights"]} if RCLIP["image_weights"] else {}


def demo_data_manifest():
    """The synthetic dataset's manifest when the demo writes the data roots, else nothing."""
    return "results/demo_data/manifest.json" if DATA["synthetic"] else []


# --- RRG -------------------------------------------------------------------------------
def train_detector_inputs(wildcards):
    return {"split": split_file(SYSTEMS.variant_subsample(wildcards.variant))}


def train_selector_inputs(wildcards):
    subsample = SYSTEMS.variant_subsample(wildcards.variant)
    train = region_features(wildcards.variant, wildcards.seed, subsample, "train")
    valid = region_features(wildcards.variant, wildcards.seed, subsample, "valid")
    return {
        "train": train["features"],
        "valid": valid["features"],
        "train_rows": train["rows"],
        "valid_rows": valid["rows"],
    }


def train_generator_inputs(wildcards):
    subsample = SYSTEMS.variant_subsample(wildcards.variant)
    train = region_features(wildcards.variant, wildcards.seed, subsample, "train")
    valid = region_features(wildcards.variant, wildcards.seed, subsample, "valid")
    return {
        **demo_model_inputs(gpt2=("gpt2", RRG["generator_model"])),
        "train_features": train["features"],
        "valid_features": valid["features"],
        "train_index": train["rows"],
        "valid_index": valid["rows"],
    }


def generate_reports_inputs(wildcards):
    """The common test split's region features (generate_reports_for: any subsample/split)."""
    subsample = getattr(wildcards, "subsample", SYSTEMS.test_subsample())
    split = getattr(wildcards, "split", "test")
    features = region_features(wildcards.variant, wildcards.seed, subsample, split)
    return {"features": features["features"], "features_index": features["rows"]}


# --- R-CLIP, back-translation, probes ------------------------------------------------------
def clip_texts_inputs(wildcards):
    inputs = {"split": split_file(RCLIP["subsample"])}
    if wildcards.text == "radiologist":
        inputs["images"] = "results/data/images.parquet"
    else:
        base = f"results/rrg/{RCLIP['generated_by']}/seed{rclip_generated_seed()}"
        inputs["reports"] = [
            f"{base}/reports_{RCLIP['subsample']}_{s}.parquet" for s in CLIP_TEXT_SPLITS
        ]
    return inputs


def back_translate_inputs(wildcards):
    return demo_model_inputs(
        marian_en_it=("marian_en_it", BT["en_it_model"]),
        marian_it_en=("marian_it_en", BT["it_en_model"]),
    )


def train_clip_inputs(wildcards):
    return {
        **demo_model_inputs(bert=("bert", RCLIP["text_model"])),
        **image_weights_inputs(),
    }


def train_convirt_inputs(wildcards):
    # ImageNet-init ConVIRT starts from rclip.image_weights (an input: a new file retrains it)
    return {
        **demo_model_inputs(bert=("bert", RCLIP["text_model"])),
        **(image_weights_inputs() if wildcards.init == "imagenet_init" else {}),
    }


def train_probe_inputs(wildcards):
    folder = clip_folder(wildcards.encoder, wildcards.seed)
    if folder:
        return {"clip": folder}
    if wildcards.encoder == "imagenet_init":
        if not RCLIP["image_weights"]:
            raise WorkflowError(
                "probe encoder imagenet_init needs rclip.image_weights (a local ImageNet state dict)"
            )
        return image_weights_inputs()
    return {}


# --- report baselines --------------------------------------------------------------------
def report_baseline_inputs(wildcards):
    return {"split": split_file(SYSTEMS.baseline_subsample(wildcards.baseline))}


def baseline_most_frequent_inputs(wildcards):
    return {
        "split": split_file(SYSTEMS.variant_subsample(wildcards.variant)),
        "test_split": split_file(SYSTEMS.test_subsample()),
    }


# --- evaluation and tables ---------------------------------------------------------------
def evaluate_rrg_inputs(wildcards):
    system, seed = wildcards.system, wildcards.seed
    inputs = {
        "images": "results/data/images.parquet",
        "split": split_file(SYSTEMS.eval_subsample(system)),
        "reports": SYSTEMS.reports(system, seed),
    }
    if EVAL["chexbert"]["checkpoint"]:
        inputs["chexbert"] = EVAL["chexbert"]["checkpoint"]
    if SYSTEMS.kind(system) == "rrg" and EVAL["region_metrics"]:
        inputs["predictions"] = SYSTEMS.predictions(system, seed)
        inputs["regions"] = "results/cache/mimic/regions.parquet"
    return inputs


def summarize_rrg_inputs(wildcards):
    return {"metrics": SYSTEMS.rrg_metrics_files(wildcards.system)}


def compare_rrg_inputs(wildcards):
    reference = SYSTEMS.comparison_reference(wildcards.system)
    return {
        "metrics": SYSTEMS.rrg_metrics_files(wildcards.system),
        "reference": SYSTEMS.rrg_metrics_files(reference),
    }


def compare_probe_inputs(wildcards):
    return {
        "metrics": SYSTEMS.probe_metrics_files(wildcards.encoder),
        "reference": SYSTEMS.probe_metrics_files("random_init"),
    }


def table1_inputs(wildcards):
    entries = table1_entries(config, SYSTEMS)
    return {
        "summaries": [e["summary"] for e in entries],
        "metrics": [m for e in entries for m in e["metrics"]],
        "comparisons": comparison_files(entries),
    }


def table2_inputs(wildcards):
    entries = table2_entries(config, SYSTEMS)
    return {
        "summaries": [e["summary"] for e in entries],
        "metrics": [m for e in entries for m in e["metrics"]],
        "comparisons": comparison_files(entries),
    }


def roc_curves_inputs(wildcards):
    return {
        "metrics": [
            m for e in SYSTEMS.probe_encoders() for m in SYSTEMS.probe_metrics_files(e)
        ]
    }


def figure4_inputs(wildcards):
    variant = EVAL["figure4_variant"] or SYSTEMS.main_variant
    return {"predictions": SYSTEMS.predictions(variant, SEEDS[0])}


def explorer_inputs(wildcards):
    runs = explorer_runs()
    return {
        kind: [r[kind] for r in runs if r[kind]]
        for kind in ("reports", "predictions", "metrics")
    }
