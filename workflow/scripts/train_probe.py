"""Adapter for rule train_probe: the RSNA linear probe of one frozen encoder and seed."""
# `snakemake` is injected by Snakemake's script directive.
import logging

from crrg_clip.runtime import start_job
from crrg_clip.settings import ProbeSettings
from crrg_clip.train.probe import train_probe

job = start_job(snakemake, num_workers_key=("probe", "num_workers"))
result = train_probe(ProbeSettings.from_params(snakemake.params.settings), dict(snakemake.input.items()),
                     dict(snakemake.output.items()), encoder=snakemake.wildcards.encoder, device=job.device,
                     seed=int(snakemake.wildcards.seed), checkpoint_dir=snakemake.params.checkpoint_dir,
                     num_workers=job.num_workers)
logging.getLogger("train_probe").info("done: %s", result)
