"""Adapter for rule train_selector: RRG stage 2 (region selection + abnormal classifier)."""
# `snakemake` is injected by Snakemake's script directive.
from crrg_clip.runtime import start_job
from crrg_clip.settings import SelectorSettings
from crrg_clip.train.selector import train_selector

job = start_job(snakemake)
train_selector(SelectorSettings.from_params(snakemake.params.settings), dict(snakemake.input.items()),
               dict(snakemake.output.items()), device=job.device, seed=int(snakemake.wildcards.seed),
               checkpoint_dir=snakemake.params.checkpoint_dir)
