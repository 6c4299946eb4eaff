"""Adapter for rules generate_reports / generate_reports_for: select, generate, assemble."""
# `snakemake` is injected by Snakemake's script directive.
import os

from crrg_clip.runtime import setup_logging

setup_logging(snakemake.log[0])

from crrg_clip.generate import run_generation

dedup = dict(snakemake.params.dedup)
run_generation(
    generator_folder=snakemake.input.generator,
    selector_folder=os.path.dirname(snakemake.input.selector_config),
    features_path=snakemake.input.features,
    features_index=snakemake.input.features_index,
    regions_path=snakemake.input.get("regions"),
    images_path=snakemake.input.images,
    cache_index_path=snakemake.input.get("cache_index"),
    predictions_out=snakemake.output.get("predictions"),
    reports_out=snakemake.output.reports,
    num_beams=snakemake.params.num_beams,
    max_new_tokens=snakemake.params.max_new_tokens,
    batch_size=snakemake.params.batch_size,
    similarity=dedup["similarity"],
    threshold=dedup["threshold"],
    device=snakemake.params.device,
    amp=snakemake.params.amp,
    seed=int(snakemake.wildcards.seed),
    threads=snakemake.params.torch_threads,
    run_info_out=snakemake.output.run_info,
)
