"""Adapter for rules train_clip and train_convirt: CLIP pretraining (R-CLIP or ConVIRT losses) on one
text source and seed."""
# `snakemake` is injected by Snakemake's script directive.
import logging

from crrg_clip.runtime import start_job
from crrg_clip.settings import CLIPSettings
from crrg_clip.train.clip import train_clip

job = start_job(snakemake, num_workers_key=("rclip", "num_workers"))
result = train_clip(CLIPSettings.from_params(snakemake.params.settings), dict(snakemake.input.items()),
                    dict(snakemake.output.items()), device=job.device, seed=int(snakemake.wildcards.seed),
                    checkpoint_dir=snakemake.params.checkpoint_dir, num_workers=job.num_workers,
                    text_source=snakemake.params.get("text_source") or snakemake.wildcards.text)
logging.getLogger("train_clip").info("done: %s", result)
