"""Adapter for rule back_translate: en -> it -> en for the CLIP training texts of one source."""
import logging

import pandas as pd

from crrg_clip.backtranslate import (Checks, GenerationSettings, MarianTranslator, TranslationCache,
                                     back_translate_units, counts_table)
from crrg_clip.runinfo import now, write_run_info
from crrg_clip.runtime import describe_device, pick_device, seed_everything, set_threads, setup_logging

# `snakemake` is injected by Snakemake's script directive.
setup_logging(snakemake.log[0])
log = logging.getLogger("back_translate")
started = now()
set_threads(snakemake.params.torch_threads)
s = snakemake.params.settings

texts = pd.read_parquet(snakemake.input.texts)
if "text" not in texts.columns:
    raise ValueError(f"{snakemake.input.texts}: missing column 'text'")
if texts["text"].isna().any():
    raise ValueError(f"{snakemake.input.texts}: {int(texts['text'].isna().sum())} rows have no text (null)")

settings = GenerationSettings(num_beams=s["num_beams"], do_sample=s["do_sample"], temperature=s["temperature"],
                              batch_size=s["batch_size"], max_length=s["max_length"], seed=s["seed"])
checks = Checks(min_length_ratio=s["min_length_ratio"], max_length_ratio=s["max_length_ratio"],
                max_repeated_ngram_fraction=s["max_repeated_ngram_fraction"], ngram_size=s["repeated_ngram_size"])
device = pick_device(snakemake.params.device)
seed_everything(settings.seed)
forward = MarianTranslator(snakemake.params.en_it_model, device, settings)
backward = MarianTranslator(snakemake.params.it_en_model, device, settings)
cache = TranslationCache(snakemake.params.cache)
try:
    result = back_translate_units(texts["text"].astype(str).tolist(), forward, backward, settings, checks, cache,
                                  unit=s["unit"])
finally:
    cache.close()

result.table.to_parquet(snakemake.output.backtranslations, index=False)
counts_table(result.counts, s["unit"]).to_csv(snakemake.output.qc, sep="\t", index=False)
log.info("%d unique texts; unit %s: %d translated, %d from the cache, %.1f s; status counts %s",
         len(result.table), s["unit"], result.translated, result.cached, result.seconds, result.counts)
write_run_info(snakemake.output.run_info, started=started, device=describe_device(device), seed=settings.seed,
               settings={**s, "en_it_model": snakemake.params.en_it_model, "it_en_model": snakemake.params.it_en_model},
               extra={"models": {"en_it": forward.identity, "it_en": backward.identity},
                      "counts": result.counts, "rows_in": len(texts), "unique_texts": len(result.table), "unit": s["unit"],
                      "translated": result.translated, "cached": result.cached,
                      "batches": {"en_it": forward.calls, "it_en": backward.calls},
                      "seconds": round(result.seconds, 2)})
