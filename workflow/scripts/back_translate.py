"""Adapter for rule back_translate: en -> it -> en for the CLIP training texts of one source."""
# `snakemake` is injected by Snakemake's script directive.
from crrg_clip.backtranslate_texts import back_translate_texts
from crrg_clip.runtime import start_job
from crrg_clip.settings import BacktranslationSettings

job = start_job(snakemake)
back_translate_texts(BacktranslationSettings.from_params(snakemake.params.settings), dict(snakemake.input.items()),
                     dict(snakemake.output.items()), job=job, cache_path=snakemake.params.cache)
