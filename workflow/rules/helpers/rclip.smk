# Input functions and constants for workflow/rules/rclip.smk (kept apart from the
# rules so each rule file reads as a list of signatures).
RCLIP = config["rclip"]
PROBE = config["probe"]
RCLIP_GENERATED_SEED = (
    RCLIP["generated_seed"] if RCLIP["generated_seed"] is not None else SEEDS[0]
)
# CLIP trains on the subsample's train split; its valid split gives the validation loss
RCLIP_TEXT_SPLITS = ["train", "valid"]
RCLIP_PROBE_ENCODERS = ["rclip_radiologist", "rclip_generated", "random_init"] + (
    ["imagenet_init"] if RCLIP["image_weights"] else []
)


def rclip_image_weights_input():
    # an input, not a param: replacing the weights file reruns what was trained from it
    return {"image_weights": RCLIP["image_weights"]} if RCLIP["image_weights"] else {}


def rclip_bert_input():
    return {"bert": "results/pretrained/bert"} if RCLIP["text_model"] == "demo" else {}


def rclip_text_model():
    return (
        "results/pretrained/bert"
        if RCLIP["text_model"] == "demo"
        else RCLIP["text_model"]
    )


def rclip_texts_input(wildcards):
    inputs = {"split": f"results/splits/{RCLIP['subsample']}.parquet"}
    if wildcards.text == "radiologist":
        inputs["images"] = "results/data/images.parquet"
    else:
        base = f"results/rrg/{RCLIP['generated_by']}/seed{RCLIP_GENERATED_SEED}"
        inputs["reports"] = [
            f"{base}/reports_{RCLIP['subsample']}_{s}.parquet"
            for s in RCLIP_TEXT_SPLITS
        ]
    return inputs


def rclip_probe_encoder_input(wildcards):
    encoder = wildcards.encoder
    if encoder.startswith("rclip_"):
        return {
            "clip": f"results/rclip/{encoder[len('rclip_'):]}/seed{wildcards.seed}/clip"
        }
    if encoder.startswith("convirt_"):  # rules/baselines.smk
        init = encoder[len("convirt_") :]
        return {"clip": f"results/rclip/convirt/{init}/seed{wildcards.seed}/clip"}
    if encoder == "imagenet_init":
        if not RCLIP["image_weights"]:
            raise WorkflowError(
                "probe encoder imagenet_init needs rclip.image_weights (a local ImageNet state dict)"
            )
        return rclip_image_weights_input()
    return {}
