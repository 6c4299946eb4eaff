# Input functions and constants for workflow/rules/evaluate.smk (kept apart from the
# rules so each rule file reads as a list of signatures).
EVAL = config["evaluation"]
RRG_VARIANTS = dict(
    (config.get("rrg") or {}).get("variants")
    or {"rrg_base": {"subsample": "rrg_base"}, "rrg_opt": {"subsample": "rrg_opt"}}
)
EXTERNAL_SYSTEMS = dict(EVAL["external_systems"])
# S&T and AdaAtt trained on our data (rules/baselines.smk): systems of kind "baseline", one per seed
REPORT_BASELINES = [
    b for b in ("show_tell", "adaatt") if config["baselines"][b]["enabled"]
]
# ConVIRT pretrained on our data (rules/baselines.smk): probe encoders convirt_<init>
CONVIRT_ENCODERS = (
    ["convirt_random_init"]
    + (
        ["convirt_imagenet_init"]
        if (config.get("rclip") or {}).get("image_weights")
        else []
    )
    if config["convirt"]["enabled"]
    else []
)


def variant_subsample(variant):
    return (RRG_VARIANTS.get(variant) or {}).get("subsample", variant)


def main_variant():
    return "rrg_opt" if "rrg_opt" in RRG_VARIANTS else next(iter(RRG_VARIANTS))


def external_subsample():
    return EVAL["external_subsample"] or variant_subsample(main_variant())


def probe_encoders():
    encoders = ["rclip_radiologist", "rclip_generated", "random_init"]
    if (config.get("rclip") or {}).get("image_weights"):
        encoders.append("imagenet_init")
    return encoders + CONVIRT_ENCODERS


def rrg_systems():
    systems = list(RRG_VARIANTS)
    if EVAL["most_frequent_baseline"]:
        systems += [f"{v}-most_frequent" for v in RRG_VARIANTS]
    systems += REPORT_BASELINES
    systems += [f"external-{name}" for name in EXTERNAL_SYSTEMS]
    return systems


def system_kind(system):
    if system in RRG_VARIANTS:
        return "rrg"
    return "external" if system.startswith("external-") else "baseline"


def system_seeds(system):
    return (
        SEEDS
        if system_kind(system) == "rrg" or system in REPORT_BASELINES
        else SEEDS[:1]
    )


def test_subsample():
    """The subsample whose test split every Table 1 row is scored on (one test set, one
    IDF / DF fit, so rows compare like for like and pair in the bootstrap)."""
    return EVAL["test_subsample"] or variant_subsample(main_variant())


def system_subsample(system):
    """The split file a system is evaluated with: the common test subsample for every
    system except an external one scored on `evaluation.external_subsample`."""
    if system_kind(system) == "external":
        return external_subsample()
    return test_subsample()


def _alternatives(names):
    import re

    return "|".join(re.escape(n) for n in names) or "(?!)"


def raw_manifests():
    """The raw inputs' index files (checked for existence when the job runs)."""
    if DATA["synthetic"]:
        return ["results/demo_data/manifest.json"]
    return [
        *(
            f"{DATA['mimic_cxr_jpg']}/mimic-cxr-2.0.0-{n}.csv.gz"
            for n in ("split", "metadata", "chexpert")
        ),
        *(
            f"{DATA['imagenome']}/silver_dataset/splits/{s}.csv"
            for s in ("train", "valid", "test", "images_to_avoid")
        ),
        f"{DATA['rsna']}/stage_2_train_labels.csv",
        f"{DATA['rsna']}/stage_2_detailed_class_info.csv",
    ]


def data_upstream():
    return [
        "results/data/reports.parquet",
        "results/data/mimic_images.parquet",
        "results/data/regions.parquet",
        "results/qc/exclusions.tsv",
        *raw_manifests(),
    ]


def rrg_model_dirs(variant, seed):
    return [
        f"results/rrg/{variant}/seed{seed}/{part}"
        for part in ("detector", "selector", "generator")
    ]


def rrg_eval_inputs(wildcards):
    system, kind = wildcards.system, system_kind(wildcards.system)
    subsample = system_subsample(system)
    inputs = {
        "images": "results/data/images.parquet",
        "split": f"results/splits/{subsample}.parquet",
    }
    if EVAL["chexbert"]["checkpoint"]:
        inputs["chexbert"] = EVAL["chexbert"]["checkpoint"]
    if kind == "rrg":
        inputs["reports"] = (
            f"results/rrg/{system}/seed{wildcards.seed}/reports_test.parquet"
        )
        if EVAL["region_metrics"]:
            inputs["predictions"] = (
                f"results/rrg/{system}/seed{wildcards.seed}/predictions_test.parquet"
            )
            inputs["regions"] = "results/cache/mimic/regions.parquet"
    elif system in REPORT_BASELINES:
        inputs["reports"] = (
            f"results/rrg/baselines/{system}/seed{wildcards.seed}/reports_test.parquet"
        )
    elif kind == "baseline":
        variant = system[: -len("-most_frequent")]
        inputs["reports"] = (
            f"results/rrg/{variant}/baselines/most_frequent/reports_test.parquet"
        )
    else:
        inputs["reports"] = EXTERNAL_SYSTEMS[system[len("external-") :]]
    return inputs


def rrg_eval_model_dirs(wildcards):
    if wildcards.system in REPORT_BASELINES:
        return [f"results/rrg/baselines/{wildcards.system}/seed{wildcards.seed}/model"]
    if system_kind(wildcards.system) != "rrg":
        return []
    return rrg_model_dirs(wildcards.system, wildcards.seed)


def probe_model_dirs(wildcards):
    """(required, optional) model folders behind a probe's predictions."""
    seed = wildcards.seed
    required = [f"results/rclip/probe/{wildcards.encoder}/seed{seed}"]
    optional = []
    if wildcards.encoder.startswith("rclip_"):
        text = wildcards.encoder[len("rclip_") :]
        required.append(f"results/rclip/{text}/seed{seed}/clip")
        if text == "generated":
            # the RRG model that wrote the texts: rclip.generated_seed, not the probe's seed
            variant = (config.get("rclip") or {}).get("generated_by", main_variant())
            optional += rrg_model_dirs(variant, RCLIP_GENERATED_SEED)
    if wildcards.encoder in CONVIRT_ENCODERS:
        init = wildcards.encoder[len("convirt_") :]
        required.append(f"results/rclip/convirt/{init}/seed{seed}/clip")
    return required, optional


def probe_upstream(wildcards):
    files = [
        "results/data/rsna.parquet",
        "results/cache/rsna/index.parquet",
        *raw_manifests(),
    ]
    if wildcards.encoder.startswith(("rclip_", "convirt_")):
        # ConVIRT trains on the radiologists' texts
        text = (
            wildcards.encoder[len("rclip_") :]
            if wildcards.encoder.startswith("rclip_")
            else "radiologist"
        )
        files += [
            f"results/rclip/texts_{text}.parquet",
            f"results/rclip/backtranslations_{text}.parquet",
            "results/data/images.parquet",
            *data_upstream(),
        ]
    return files


def regenerate(target):
    configfiles = " ".join(
        f"--configfile {f}" for f in getattr(workflow, "configfiles", []) or []
    )
    return f"snakemake --cores all {configfiles} {target}".replace("  ", " ")


def rrg_summaries():
    return [f"results/metrics/rrg/{s}/summary.json" for s in rrg_systems()]


def rrg_metrics_files():
    return [
        f"results/metrics/rrg/{s}/seed{seed}.json"
        for s in rrg_systems()
        for seed in system_seeds(s)
    ]


def probe_summaries():
    return [f"results/metrics/probe/{e}/summary.json" for e in probe_encoders()]


def probe_metrics_files():
    return [
        f"results/metrics/probe/{e}/seed{seed}.json"
        for e in probe_encoders()
        for seed in SEEDS
    ]


def evaluation_targets():
    return [
        "results/table1.csv",
        "results/table2.csv",
        "results/figure4.png",
        "results/figures/roc.png",
    ]


wildcard_constraints:
    seed=r"\d+",


# Table 1's paired comparisons: each reproduced report generator against the most-frequent
# baseline on the same test set (rules compare_rrg / compare_probe write them).
RRG_COMPARED_METRICS = ["BLEU4", "METEOR", "ROUGEL", "CE_F1_mic5"]


def compared_rrg_systems():
    if not EVAL["most_frequent_baseline"]:
        return []
    return [*RRG_VARIANTS, *REPORT_BASELINES]


def rrg_comparison_reference(system):
    """Each variant is compared with its own training set's most-frequent report; S&T and
    AdaAtt (trained on their subsample) with the main variant's."""
    variant = system if system in RRG_VARIANTS else main_variant()
    return f"{variant}-most_frequent"


def rrg_comparison_inputs(wildcards):
    reference = rrg_comparison_reference(wildcards.system)
    return {
        "metrics": [
            f"results/metrics/rrg/{wildcards.system}/seed{s}.json"
            for s in system_seeds(wildcards.system)
        ],
        "reference": [
            f"results/metrics/rrg/{reference}/seed{s}.json"
            for s in system_seeds(reference)
        ],
    }


def rrg_comparison_file(system):
    if system not in compared_rrg_systems():
        return None
    return f"results/metrics/rrg/{system}/vs_most_frequent.json"


def probe_comparison_file(encoder):
    if encoder == "random_init":
        return None
    return f"results/metrics/probe/{encoder}/vs_random_init.json"
