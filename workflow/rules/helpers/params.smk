# Param functions: each stage's settings (the values that change its output, as plain
# values: a change reruns the rule), model sources and the provenance that evaluation
# rules record. Run-time choices are not here: the adapters read them (common.smk).
from crrg_clip.systems import (
    RRG_COMPARED_METRICS,
    clip_folder,
    parse_encoder,
    rrg_metrics,
    rrg_model_dirs,
)
from crrg_clip.tables import (
    comparison_files,
    roc_labels,
    table1_entries,
    table2_entries,
)

# CLIP trains on the subsample's train split; its valid split gives the validation loss
CLIP_TEXT_SPLITS = ["train", "valid"]


def rclip_generated_seed():
    """The RRG seed whose reports are the `generated` text (every CLIP seed trains on them)."""
    seed = RCLIP["generated_seed"]
    return seed if seed is not None else SEEDS[0]


def settings_of(stage, *keys):
    """A rule's `settings` param: crrg_clip.settings.stage_settings for the stage, with the
    named wildcards as its keys (e.g. settings_of("detector", "variant"))."""

    def param(wildcards):
        return to_params(
            stage_settings(config, stage, **{k: wildcards[k] for k in keys})
        )

    return param


def data_root(key):
    """A configured data root (already checked by check_data_roots)."""
    return str(Path(DATA[key]))


def subsample_sizes(wildcards):
    return {
        s: config["subsamples"][wildcards.subsample][s]
        for s in ("train", "valid", "test")
    }


def subsample_seed(wildcards):
    return config["subsamples"][wildcards.subsample]["seed"]


def regenerate(target):
    configfiles = " ".join(
        f"--configfile {f}" for f in getattr(workflow, "configfiles", []) or []
    )
    return f"snakemake --cores all {configfiles} {target}".replace("  ", " ")


def command_of(output_name):
    """The command that rebuilds a rule's output (recorded in its provenance)."""
    return lambda wildcards, output: regenerate(getattr(output, output_name))


# --- provenance of evaluation rules --------------------------------------------------------
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


def data_upstream(wildcards=None):
    return [
        "results/data/reports.parquet",
        "results/data/mimic_images.parquet",
        "results/data/regions.parquet",
        "results/qc/exclusions.tsv",
        *raw_manifests(),
    ]


def system_kind(wildcards):
    return SYSTEMS.kind(wildcards.system)


def comparison_reference(wildcards):
    return SYSTEMS.comparison_reference(wildcards.system)


def evaluate_rrg_model_dirs(wildcards):
    return SYSTEMS.model_dirs(wildcards.system, wildcards.seed)


def probe_model_dirs(wildcards):
    """(required, optional) model folders behind a probe's predictions."""
    seed, encoder = wildcards.seed, parse_encoder(wildcards.encoder)
    required = [f"results/rclip/probe/{encoder.name}/seed{seed}"]
    optional = []
    if encoder.has_clip_folder:
        required.append(clip_folder(encoder.name, seed))
    if encoder.family == "rclip" and encoder.source == "generated":
        # the RRG model that wrote the texts: rclip.generated_seed, not the probe's seed
        optional += rrg_model_dirs(RCLIP["generated_by"], rclip_generated_seed())
    return required, optional


def probe_required_dirs(wildcards):
    return probe_model_dirs(wildcards)[0]


def probe_optional_dirs(wildcards):
    return probe_model_dirs(wildcards)[1]


def probe_upstream(wildcards):
    files = [
        "results/data/rsna.parquet",
        "results/cache/rsna/index.parquet",
        *raw_manifests(),
    ]
    encoder = parse_encoder(wildcards.encoder)
    if encoder.has_clip_folder:
        # ConVIRT trains on the radiologists' texts
        text = encoder.source if encoder.family == "rclip" else "radiologist"
        files += [
            f"results/rclip/texts_{text}.parquet",
            f"results/rclip/backtranslations_{text}.parquet",
            "results/data/images.parquet",
            *data_upstream(),
        ]
    return files


def table_labelers():
    return ["rule-based"] + (["CheXbert"] if EVAL["chexbert"]["checkpoint"] else [])


def explorer_runs():
    """[{system, seed, reports, predictions, metrics}] in Table 1's system order."""
    return [
        {
            "system": system,
            "seed": seed,
            "reports": SYSTEMS.reports(system, seed),
            "predictions": SYSTEMS.predictions(system, seed),
            "metrics": rrg_metrics(system, seed),
        }
        for system in SYSTEMS.rrg_systems()
        for seed in SYSTEMS.system_seeds(system)
    ]


def demo_gpt2_positions():
    """The demo GPT-2's context: room for the longest training sentence and generation."""
    longest_generation = max(
        [v["max_new_tokens"] + 2 for v in RRG["variants"].values()] or [0]
    )
    return max(256, RRG["max_sentence_tokens"], longest_generation)


def baseline_generation_batch_size(wildcards):
    return BASELINES[wildcards.baseline]["generation_batch_size"]


def convirt_text_source(wildcards):
    """What the ConVIRT model folder records as its text source."""
    return f"convirt {wildcards.init}, radiologist"
