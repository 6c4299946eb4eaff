"""Adapter for rule train_report_baseline: S&T or AdaAtt on one subsample and seed."""
# `snakemake` is injected by Snakemake's script directive.
import logging

from crrg_clip.runtime import start_job
from crrg_clip.settings import ReportBaselineSettings
from crrg_clip.train.report_baseline import train_report_baseline

job = start_job(snakemake)
result = train_report_baseline(ReportBaselineSettings.from_params(snakemake.params.settings),
                               dict(snakemake.input.items()), dict(snakemake.output.items()), device=job.device,
                               seed=int(snakemake.wildcards.seed), checkpoint_dir=snakemake.params.checkpoint_dir)
logging.getLogger("train_report_baseline").info("done: %s", result)
