# Validate the config once (defaults filled from the schema) and define the helpers
# every rule file uses. Package code receives plain values from here, never `config`.
import sys
from pathlib import Path

sys.path.insert(0, str(Path(workflow.basedir) / "src"))

from crrg_clip.config import ConfigError, validate_config

try:
    _validated = validate_config(config)
except ConfigError as error:
    raise WorkflowError(str(error)) from None
config.clear()
config.update(_validated)

ENV = "../../envs/crrg-clip.yaml"
SEEDS = config["seeds"]
DATA = config["data"]


def demo_data_manifest():
    """The synthetic dataset's manifest when the demo writes the data roots, else nothing."""
    return "results/demo_data/manifest.json" if DATA["synthetic"] else []


# What each real data root must hold (FORMATS.md); checked once, before any job, so a
# wrong path is reported with everything that is missing rather than as a failed job.
DATA_LAYOUT = {
    "mimic_cxr_reports": ["files"],
    "mimic_cxr_jpg": [
        "files",
        "mimic-cxr-2.0.0-metadata.csv.gz",
        "mimic-cxr-2.0.0-split.csv.gz",
    ],
    "imagenome": ["silver_dataset/scene_graph", "silver_dataset/splits"],
    "rsna": ["stage_2_train_labels.csv", "stage_2_train_images"],
}


def check_data_roots():
    if DATA["synthetic"]:
        return
    problems = [
        f"data.{key} = {DATA[key]}: expected {Path(DATA[key]) / item}"
        for key, items in DATA_LAYOUT.items()
        for item in items
        if not (Path(DATA[key]) / item).exists()
    ]
    if problems:
        raise WorkflowError(
            "missing raw data (see README, 'Real data'):\n  " + "\n  ".join(problems)
        )


check_data_roots()


def check_configured_files():
    """Optional model files named in the config must exist before any job starts."""
    chexbert_file = config["evaluation"]["chexbert"]["checkpoint"]
    if chexbert_file and not Path(chexbert_file).is_file():
        raise WorkflowError(
            f"config key evaluation.chexbert.checkpoint = {chexbert_file}: file not found "
            "(the CheXbert labeler is never downloaded; set it to null to use the rule-based labeler only)"
        )


check_configured_files()


def data_root(key):
    """A configured data root (already checked by check_data_roots)."""
    return str(Path(DATA[key]))


def torch_threads(wildcards, threads):
    """Torch threads of a job: config torch_threads, or 0 = the rule's Snakemake threads
    (the job caps them at the CPUs it may run on)."""
    return config["torch_threads"] or threads


def default_targets():
    """What `snakemake` builds with no target: the tables, the figures and the QC accounting."""
    return [
        "results/qc/summary.tsv",
        "results/qc/training_summary.tsv",
        *evaluation_targets(),
        "results/explorer",
    ]


RRG_VARIANTS = list(config["rrg"]["variants"])
TEXT_SOURCES = ["radiologist", "generated"]


wildcard_constraints:
    seed=r"\d+",
    split="train|valid|test",
    text="|".join(TEXT_SOURCES),
    variant="|".join(RRG_VARIANTS) if RRG_VARIANTS else "rrg_base|rrg_opt",
    subsample=(
        "|".join(config["subsamples"]) if config["subsamples"] else r"[A-Za-z0-9_]+"
    ),


# Each stage's input functions, apart from its rules (snakemake --lint asks for this).
include: "helpers/rrg.smk"
include: "helpers/generator.smk"
include: "helpers/rclip.smk"
include: "helpers/backtranslate.smk"
include: "helpers/evaluate.smk"
include: "helpers/tables.smk"
