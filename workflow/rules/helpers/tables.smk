# Input functions and constants for workflow/rules/tables.smk (kept apart from the
# rules so each rule file reads as a list of signatures).
from crrg_clip.tables import PROBE_ROWS, dataset_label, rrg_row_name


def training_subsample(system):
    """The subsample a Table 1 system learnt from (its `dataset` cell); every row is tested
    on the same test split (`test_subsample()`)."""
    if system_kind(system) == "external":
        return external_subsample()
    if system in REPORT_BASELINES:
        return config["baselines"][system]["subsample"] or variant_subsample(
            main_variant()
        )
    return variant_subsample(system.split("-")[0])


def table1_entries():
    entries = []
    for system in rrg_systems():
        subsample = training_subsample(system)
        entries.append(
            {
                "system": system,
                "model": rrg_row_name(system),
                "dataset": dataset_label(
                    config["subsamples"].get(subsample), DATA["synthetic"], subsample
                ),
                "source": (
                    "scored" if system_kind(system) == "external" else "reproduced"
                ),
                "summary": f"results/metrics/rrg/{system}/summary.json",
                "comparison": rrg_comparison_file(system),
                "metrics": [
                    f"results/metrics/rrg/{system}/seed{s}.json"
                    for s in system_seeds(system)
                ],
            }
        )
    return entries


def table2_entries():
    train_subset = (config.get("rsna") or {}).get("train_subset", 0.01)
    if DATA["synthetic"]:
        dataset = "demo (RSNA)"
    elif isinstance(train_subset, float):
        dataset = f"RSNA {train_subset * 100:g}%"
    else:
        dataset = f"RSNA {train_subset} training images"
    entries = []
    for encoder in probe_encoders():
        model, method = PROBE_ROWS[encoder]
        if encoder in ("random_init", "imagenet_init"):
            # the baselines use the configured image encoder (the demo's is smaller than ResNet-50)
            model = config["rclip"]["image_encoder"].replace("resnet", "ResNet-")
        entries.append(
            {
                "system": encoder,
                "model": model,
                "method": method,
                "dataset": dataset,
                "source": "reproduced",
                "summary": f"results/metrics/probe/{encoder}/summary.json",
                "comparison": probe_comparison_file(encoder),
                "metrics": [
                    f"results/metrics/probe/{encoder}/seed{s}.json" for s in SEEDS
                ],
            }
        )
    return entries


def table_comparisons(entries):
    return [e["comparison"] for e in entries if e["comparison"]]
