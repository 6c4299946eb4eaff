"""Adapter for rule generate_report_baseline: beam-search reports for the test split."""
# `snakemake` is injected by Snakemake's script directive.
from crrg_clip.runtime import start_job
from crrg_clip.settings import ReportBaselineSettings
from crrg_clip.train.report_baseline import generate_baseline_reports

job = start_job(snakemake)
generate_baseline_reports(ReportBaselineSettings.from_params(snakemake.params.settings), dict(snakemake.input.items()),
                          dict(snakemake.output.items()), device=job.device, batch_size=snakemake.params.batch_size)
