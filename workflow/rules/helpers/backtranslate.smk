# Input functions and constants for workflow/rules/backtranslate.smk (kept apart from the
# rules so each rule file reads as a list of signatures).
BT = config["backtranslation"]
BT_DEMO = {
    "en_it": "results/pretrained/marian_en_it",
    "it_en": "results/pretrained/marian_it_en",
}


def backtranslation_models_input():
    needed = {key: BT_DEMO[key] for key in BT_DEMO if BT[f"{key}_model"] == "demo"}
    return {f"marian_{key}": path for key, path in needed.items()}


def backtranslation_model(key):
    return BT_DEMO[key] if BT[f"{key}_model"] == "demo" else BT[f"{key}_model"]
