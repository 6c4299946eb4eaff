"""Adapter for rule generate_report_baseline: beam-search reports for the test split."""
from crrg_clip.runtime import pick_device, set_threads, setup_logging
from crrg_clip.train.report_baseline import run_generate_report_baseline

# `snakemake` is injected by Snakemake's script directive.
setup_logging(snakemake.log[0])
set_threads(snakemake.params.torch_threads)
run_generate_report_baseline(
    model_dir=snakemake.input.model,
    images_path=snakemake.input.images,
    split_path=snakemake.input.split,
    cache_images=snakemake.input.cache_images,
    cache_index=snakemake.input.cache_index,
    reports_out=snakemake.output.reports,
    device=pick_device(snakemake.params.device),
    beam_size=snakemake.params.beam_size,
    max_length=snakemake.params.max_length,
    batch_size=snakemake.params.batch_size,
)
