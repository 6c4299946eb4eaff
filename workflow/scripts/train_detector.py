"""Adapter for rule train_detector: RRG stage 1 (region detector)."""
from pathlib import Path

from crrg_clip.data.region_dataset import AugmentConfig, Normalize
from crrg_clip.models.detector import DetectorConfig
from crrg_clip.runtime import pick_device, set_threads, setup_logging
from crrg_clip.train.detector import Schedule, train_detector

setup_logging(snakemake.log[0])
params = snakemake.params
set_threads(params.torch_threads)
model = DetectorConfig(frozen_batchnorm=params.backbone_weights is not None, **params.model)
train_detector(
    images_path=snakemake.input.images,
    index_path=snakemake.input.index,
    regions_path=snakemake.input.regions,
    split_path=snakemake.input.split,
    out_dir=Path(snakemake.output.config).parent,
    checkpoint_dir=params.checkpoint_dir,
    model_config=model,
    backbone_weights=params.backbone_weights,
    schedule=Schedule(**params.schedule),
    augment_cfg=AugmentConfig(**params.augment),
    normalize=Normalize(model.normalize_mean, model.normalize_std),
    device=pick_device(params.device),
    seed=int(snakemake.wildcards.seed),
    jpeg_draft=snakemake.config["image_cache"]["jpeg_draft"],
    amp=params.amp,
    channels_last=params.channels_last,
    num_workers=params.num_workers,
)
