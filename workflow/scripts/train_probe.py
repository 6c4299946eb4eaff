"""Adapter for rule train_probe: the RSNA linear probe of one frozen encoder and seed."""
import logging
from pathlib import Path

from crrg_clip.runtime import pick_device, set_threads, setup_logging
from crrg_clip.train.probe import ProbeSettings, train_probe

# `snakemake` is injected by Snakemake's script directive.
setup_logging(snakemake.log[0])
set_threads(snakemake.params.torch_threads)
settings = ProbeSettings.from_config(dict(snakemake.params.settings))
result = train_probe(
    cache_images=snakemake.input.cache_images,
    cache_index=snakemake.input.cache_index,
    encoder_kind=snakemake.wildcards.encoder,
    out_dir=Path(snakemake.output.predictions).parent,
    checkpoint_dir=snakemake.params.checkpoint_dir,
    settings=settings,
    arch=snakemake.params.arch,
    normalize=dict(snakemake.params.normalize),
    normalization=snakemake.params.normalization,
    seed=int(snakemake.wildcards.seed),
    device=pick_device(snakemake.params.device),
    clip_folder=snakemake.input.get("clip"),
    image_weights=snakemake.input.get("image_weights"),
    amp=dict(snakemake.params.settings).get("amp", "bf16") == "bf16",
)
logging.getLogger("train_probe").info("done: %s", result)
