# Input functions and constants for workflow/rules/baselines.smk (kept apart from the
# rules so each rule file reads as a list of signatures). REPORT_BASELINES and
# CONVIRT_ENCODERS are defined in helpers/evaluate.smk (the evaluation needs them first).
BASELINES = config["baselines"]
CONVIRT = config["convirt"]


def baseline_subsample(baseline):
    return system_subsample(baseline)


def baseline_settings(baseline):
    """One baselines.<model> section + the shared RRG image settings, as plain values."""
    return {
        **BASELINES[baseline],
        "model": baseline,
        "backbone_weights": config["rrg"]["backbone_weights"],
        "normalize": config["rrg"]["normalize"],
        "augment": config["rrg"]["augment"],
    }


def convirt_image_weights_input(wildcards):
    # ImageNet-init ConVIRT starts from rclip.image_weights (an input: a new file retrains it)
    if wildcards.init == "imagenet_init":
        return rclip_image_weights_input()
    return {}


def convirt_settings():
    """R-CLIP's settings with ConVIRT's objective (and ConVIRT's epochs when set)."""
    settings = {**RCLIP, "loss": "convirt", "convirt": dict(CONVIRT)}
    if CONVIRT["epochs"]:
        settings["epochs"] = CONVIRT["epochs"]
    return settings
