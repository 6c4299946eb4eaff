"""Adapter for rule train_selector: RRG stage 2 (region selection + abnormal classifier)."""
from pathlib import Path

from crrg_clip.runtime import pick_device, set_threads, setup_logging
from crrg_clip.train.detector import Schedule
from crrg_clip.train.selector import train_selector

setup_logging(snakemake.log[0])
params = snakemake.params
set_threads(params.torch_threads)
train_selector(
    train_features=snakemake.input.train,
    valid_features=snakemake.input.valid,
    train_rows=snakemake.input.train_rows,
    valid_rows=snakemake.input.valid_rows,
    regions_path=snakemake.input.regions,
    out_dir=Path(snakemake.output.config).parent,
    checkpoint_dir=params.checkpoint_dir,
    region_feature_dim=params.region_feature_dim,
    abnormal_classifier=params.abnormal_classifier,
    selection_pos_weight=params.selection_pos_weight,
    abnormal_pos_weight=params.abnormal_pos_weight,
    selection_threshold=params.selection_threshold,
    schedule=Schedule(**params.schedule),
    device=pick_device(params.device),
    seed=int(snakemake.wildcards.seed),
    detector_folder=str(Path(snakemake.input.detector).parent),
)
