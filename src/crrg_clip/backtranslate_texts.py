"""Rule back_translate: the CLIP training texts of one source, en -> it -> en, with the
degenerate outputs replaced by the original text and counted (crrg_clip.backtranslate)."""

from __future__ import annotations

import logging

import pandas as pd

from .backtranslate import Checks, MarianTranslator, TranslationCache, TranslationRequests, back_translate_units, \
    counts_table
from .runinfo import now, write_run_info
from .runtime import JobRuntime, describe_device, seed_everything
from .settings import BacktranslationSettings, to_params

log = logging.getLogger(__name__)


def read_texts(path) -> list[str]:
    texts = pd.read_parquet(path)
    if "text" not in texts.columns:
        raise ValueError(f"{path}: missing column 'text'")
    if texts["text"].isna().any():
        raise ValueError(f"{path}: {int(texts['text'].isna().sum())} rows have no text (null)")
    return texts["text"].astype(str).tolist()


def back_translate_texts(settings: BacktranslationSettings, inputs, outputs, *, job: JobRuntime,
                         cache_path) -> dict:
    """``inputs["texts"]`` -> ``outputs`` backtranslations (parquet), qc (TSV) and run_info."""
    started = now()
    s = settings
    texts = read_texts(inputs["texts"])
    requests = TranslationRequests(num_beams=s.num_beams, do_sample=s.do_sample, temperature=s.temperature,
                                   batch_size=s.batch_size, max_length=s.max_length, seed=s.seed)
    checks = Checks(min_length_ratio=s.min_length_ratio, max_length_ratio=s.max_length_ratio,
                    max_repeated_ngram_fraction=s.max_repeated_ngram_fraction, ngram_size=s.repeated_ngram_size)
    seed_everything(s.seed)
    forward = MarianTranslator(s.en_it_model, job.device, requests)
    backward = MarianTranslator(s.it_en_model, job.device, requests)
    cache = TranslationCache(cache_path)
    try:
        result = back_translate_units(texts, forward, backward, requests, checks, cache, unit=s.unit)
    finally:
        cache.close()
    result.table.to_parquet(outputs["backtranslations"], index=False)
    counts_table(result.counts, s.unit).to_csv(outputs["qc"], sep="\t", index=False)
    log.info("%d unique texts; unit %s: %d translated, %d from the cache, %.1f s; status counts %s",
             len(result.table), s.unit, result.translated, result.cached, result.seconds, result.counts)
    write_run_info(outputs["run_info"], started=started, device=describe_device(job.device), seed=s.seed,
                   settings=to_params(s),
                   extra={"runtime": job.record(), "models": {"en_it": forward.identity, "it_en": backward.identity},
                          "counts": result.counts, "rows_in": len(texts), "unique_texts": len(result.table),
                          "unit": s.unit, "translated": result.translated, "cached": result.cached,
                          "batches": {"en_it": forward.calls, "it_en": backward.calls},
                          "seconds": round(result.seconds, 2)})
    return result.counts
