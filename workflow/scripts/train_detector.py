"""Adapter for rule train_detector: RRG stage 1 (region detector)."""
# `snakemake` is injected by Snakemake's script directive.
from crrg_clip.runtime import start_job
from crrg_clip.settings import DetectorSettings
from crrg_clip.train.detector import train_detector

job = start_job(snakemake, num_workers_key=("rrg", "detector_num_workers"))
train_detector(DetectorSettings.from_params(snakemake.params.settings), dict(snakemake.input.items()),
               dict(snakemake.output.items()), device=job.device, seed=int(snakemake.wildcards.seed),
               checkpoint_dir=snakemake.params.checkpoint_dir, num_workers=job.num_workers)
