"""Adapter for rule train_report_baseline: S&T or AdaAtt on one subsample and seed."""
import logging

from crrg_clip.runtime import pick_device, set_threads, setup_logging
from crrg_clip.train.report_baseline import BaselineSettings, train_report_baseline

# `snakemake` is injected by Snakemake's script directive.
setup_logging(snakemake.log[0])
set_threads(snakemake.params.torch_threads)
result = train_report_baseline(
    images_path=snakemake.input.images,
    split_path=snakemake.input.split,
    cache_images=snakemake.input.cache_images,
    cache_index=snakemake.input.cache_index,
    out_dir=snakemake.output.model,
    checkpoint_dir=snakemake.params.checkpoint_dir,
    settings=BaselineSettings.from_config(dict(snakemake.params.settings)),
    seed=int(snakemake.wildcards.seed),
    device=pick_device(snakemake.params.device),
)
logging.getLogger("train_report_baseline").info("done: %s", result)
