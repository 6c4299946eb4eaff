# Validate the config once (defaults filled from the schema), name its sections, and
# declare the wildcards. Package code receives plain values from here, never `config`:
# each training rule gets its stage's settings (crrg_clip.settings) as one param, and the
# run-time choices (device, torch threads, loader workers) are read by the adapters
# (crrg_clip.runtime.start_job), so changing them reruns nothing.
import sys
from pathlib import Path

sys.path.insert(0, str(Path(workflow.basedir) / "src"))

from crrg_clip.config import ConfigError, validate_config
from crrg_clip.settings import DEMO_MODEL_DIRS, stage_settings, to_params
from crrg_clip.systems import TEXT_SOURCES, Systems

try:
    _validated = validate_config(config)
except ConfigError as error:
    raise WorkflowError(str(error)) from None
config.clear()
config.update(_validated)

ENV = "../../envs/crrg-clip.yaml"
# one name per config section
SEEDS = config["seeds"]
DATA = config["data"]
RRG = config["rrg"]
RCLIP = config["rclip"]
BT = config["backtranslation"]
EVAL = config["evaluation"]
BASELINES = config["baselines"]
# every system and probe encoder the config asks for, their names and files
SYSTEMS = Systems(config)
VARIANTS = list(RRG["variants"])
SCENE_GRAPH_SHARDS = list(range(config["qc"]["scene_graph_shards"]))


def _alternatives(names):
    import re

    return "|".join(re.escape(n) for n in names) or "(?!)"


wildcard_constraints:
    seed=r"\d+",
    shard=r"\d+",
    split="train|valid|test",
    text=_alternatives(TEXT_SOURCES),
    variant=_alternatives(VARIANTS),
    subsample=_alternatives(config["subsamples"]),
    baseline=_alternatives(SYSTEMS.baselines),
    init="random_init|imagenet_init",
    system=_alternatives(SYSTEMS.rrg_systems()),
    encoder=_alternatives(SYSTEMS.probe_encoders()),


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


def check_configured_files():
    """Optional model files named in the config must exist before any job starts."""
    chexbert_file = EVAL["chexbert"]["checkpoint"]
    if chexbert_file and not Path(chexbert_file).is_file():
        raise WorkflowError(
            f"config key evaluation.chexbert.checkpoint = {chexbert_file}: file not found "
            "(the CheXbert labeler is never downloaded; set it to null to use the rule-based labeler only)"
        )


check_data_roots()
check_configured_files()


def default_targets():
    """What `snakemake` builds with no target: the tables, the figures and the QC accounting."""
    return [
        "results/qc/summary.tsv",
        "results/qc/training_summary.tsv",
        "results/table1.csv",
        "results/table2.csv",
        "results/figure4.png",
        "results/figures/roc.png",
        "results/explorer",
    ]


# The input and param functions of every rule, apart from the rules (snakemake --lint asks for this).
include: "helpers/inputs.smk"
include: "helpers/params.smk"
