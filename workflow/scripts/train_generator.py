"""Adapter for rule train_generator: RRG stage 3 (region-conditioned GPT-2)."""
# `snakemake` is injected by Snakemake's script directive.
from crrg_clip.runtime import start_job
from crrg_clip.settings import GeneratorSettings
from crrg_clip.train.generator import train_generator

job = start_job(snakemake)
train_generator(GeneratorSettings.from_params(snakemake.params.settings), dict(snakemake.input.items()),
                dict(snakemake.output.items()), device=job.device, seed=int(snakemake.wildcards.seed),
                checkpoint_dir=snakemake.params.checkpoint_dir)
