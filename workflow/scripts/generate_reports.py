"""Adapter for rules generate_reports / generate_reports_for: select, generate, assemble."""
# `snakemake` is injected by Snakemake's script directive.
from crrg_clip.generate import generate_reports
from crrg_clip.runtime import start_job
from crrg_clip.settings import GenerationSettings

job = start_job(snakemake)
generate_reports(GenerationSettings.from_params(snakemake.params.settings), dict(snakemake.input.items()),
                 dict(snakemake.output.items()), device=job.device, seed=int(snakemake.wildcards.seed))
