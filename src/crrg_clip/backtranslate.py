"""Back-translation (en -> it -> en) of the CLIP training texts, with checks and a cache.

The pipeline: unique texts -> cache lookup -> the misses translated in length-sorted
batches, forward then backward -> results cached -> every back-translation checked; a
degenerate one (empty, an input cut by the tokenizer at ``max_length``, an output that
reached ``max_length``, length ratio out of range, too many repeated n-grams) is replaced
by the original text, and the reason is recorded in ``status`` and counted.

Truncation is read from the output's length, not from "has an end-of-sequence token":
opus-mt's generation config (and the demo pair's) sets ``forced_eos_token_id``, so an
output cut at ``max_length`` still ends with ``</s>``. An output whose ``</s>`` sits at the
last allowed position counts as cut off (a translation that ends exactly there is flagged
too: the conservative side).

The cache stores raw translations keyed by everything an output depends on: both models'
identities, every generation setting (``batch_size`` included: padding, and with sampling
the random stream, change with the grouping), the device and the torch / transformers
versions (``Translator.runtime``), and the text. Reruns reuse work, and changing a check
threshold re-checks without re-translating. With sampling, the key also holds the
request's set of texts (a sampled output depends on the whole request), so the two text
sources share entries only when decoding is deterministic (``do_sample: false``).

The unit of translation is the whole text (``unit: report``, the paper's code) or each
sentence (``unit: sentence``): a text is split at sentence ends, its unique sentences are
back-translated and checked one by one (a degenerate sentence falls back alone), and the
results are joined again. Counts are then per unique sentence.

Letters: B batch, S source tokens, T generated tokens.
"""

from __future__ import annotations

import hashlib
import json
import logging
import sqlite3
import time
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Protocol, Sequence

import pandas as pd
import torch

from .report_assembly import split_sentences  # the same split as report assembly

log = logging.getLogger(__name__)

OK = "ok"
EMPTY_INPUT = "empty_input"
EMPTY = "empty"
INPUT_TRUNCATED = "input_truncated"
TRUNCATED = "truncated"
TOO_SHORT = "length_ratio_low"
TOO_LONG = "length_ratio_high"
REPEATED = "repeated_ngrams"
REASONS = (OK, EMPTY_INPUT, EMPTY, INPUT_TRUNCATED, TRUNCATED, TOO_SHORT, TOO_LONG, REPEATED)
# the cache's ``truncated`` column holds these bits
_OUTPUT_CUT, _INPUT_CUT = 1, 2
UNITS = ("report", "sentence")


@dataclass(frozen=True)
class TranslationRequests:
    """What the models are asked for; every field keys the cache."""
    num_beams: int = 5
    do_sample: bool = True
    temperature: float = 0.7
    batch_size: int = 128
    max_length: int = 512
    seed: int = 0

    def cache_fields(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Checks:
    """When a back-translation counts as degenerate (and the original text is kept)."""
    min_length_ratio: float = 0.5
    max_length_ratio: float = 2.0
    max_repeated_ngram_fraction: float = 0.5
    ngram_size: int = 3


@dataclass(frozen=True)
class Translation:
    text: str
    truncated: bool  # the output reached max_length (cut off)
    input_truncated: bool = False  # the tokenizer cut the input at max_length

    @property
    def flags(self) -> int:
        return (_OUTPUT_CUT if self.truncated else 0) | (_INPUT_CUT if self.input_truncated else 0)


class Translator(Protocol):
    """One direction of translation: what the pipeline needs from a model."""
    identity: str  # names the model and its weights (a content hash for local folders)
    # optional ``runtime``: a dict naming the device and library versions (part of the cache key)

    def length(self, texts: Sequence[str]) -> list[int]:
        """Input length of each text in tokens (the sort key)."""

    def translate_batch(self, texts: Sequence[str]) -> list[Translation]:
        """Translate one batch (already sorted, at most ``batch_size`` texts)."""


# --- checks ----------------------------------------------------------------------------

def repeated_ngram_fraction(text: str, n: int = 3) -> float:
    """Share of the word n-grams of ``text`` that repeat an earlier one (0 when < n words)."""
    words = text.lower().split()
    grams = [tuple(words[i:i + n]) for i in range(len(words) - n + 1)]
    if not grams:
        return 0.0
    return 1.0 - len(set(grams)) / len(grams)


def check_back_translation(original: str, back: str, truncated: bool, checks: Checks,
                           input_truncated: bool = False) -> str:
    """``ok`` or the first fallback reason that applies (in the order of REASONS)."""
    if not original.strip():
        return EMPTY_INPUT
    if not back.strip():
        return EMPTY
    if input_truncated:
        return INPUT_TRUNCATED
    if truncated:
        return TRUNCATED
    ratio = len(back.split()) / max(1, len(original.split()))
    if ratio < checks.min_length_ratio:
        return TOO_SHORT
    if ratio > checks.max_length_ratio:
        return TOO_LONG
    if repeated_ngram_fraction(back, checks.ngram_size) > checks.max_repeated_ngram_fraction:
        return REPEATED
    return OK


# --- batching --------------------------------------------------------------------------

def translate_sorted(texts: Sequence[str], translator: Translator, batch_size: int,
                     on_batch: Callable[[int, int], None] | None = None) -> list[Translation]:
    """Translate ``texts`` (assumed unique) in batches of similar length, longest first.

    Sorting by token length keeps padding small; longest first makes an out-of-memory
    failure show up in the first batch. Results come back in the input order.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    lengths = translator.length(texts)
    order = sorted(range(len(texts)), key=lambda i: (-lengths[i], i))
    results: list[Translation | None] = [None] * len(texts)
    for start in range(0, len(order), batch_size):
        idx = order[start:start + batch_size]
        batch = translator.translate_batch([texts[i] for i in idx])
        if len(batch) != len(idx):
            raise RuntimeError(f"translator returned {len(batch)} results for {len(idx)} texts")
        for i, result in zip(idx, batch):
            results[i] = result
        if on_batch:
            on_batch(start + len(idx), len(order))
    return results  # type: ignore[return-value]


# --- cache -----------------------------------------------------------------------------

class TranslationCache:
    """An sqlite file of raw back-translations keyed by sha256(models, settings, text).

    Several jobs may share it: sqlite serialises writers, and each write is one transaction.
    """

    def __init__(self, path: Path | str):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(str(self.path), timeout=120)
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS translations (key TEXT PRIMARY KEY, text TEXT NOT NULL,"
            " intermediate TEXT NOT NULL, back_translation TEXT NOT NULL, truncated INTEGER NOT NULL)")
        self._db.commit()

    @staticmethod
    def key(namespace: str, text: str) -> str:
        return hashlib.sha256(f"{namespace}\x00{text}".encode()).hexdigest()

    def get_many(self, namespace: str, texts: Sequence[str]) -> dict[str, tuple[str, str, int]]:
        found = {}
        keys = {self.key(namespace, t): t for t in texts}
        items = list(keys)
        for start in range(0, len(items), 500):
            chunk = items[start:start + 500]
            rows = self._db.execute(
                f"SELECT key, text, intermediate, back_translation, truncated FROM translations"
                f" WHERE key IN ({','.join('?' * len(chunk))})", chunk).fetchall()
            for key, text, inter, back, truncated in rows:
                if text == keys[key]:  # guards against a (practically impossible) hash collision
                    found[text] = (inter, back, int(truncated))  # the truncation bits
        return found

    def put_many(self, namespace: str, rows: Sequence[tuple[str, str, str, int]]) -> None:
        with self._db:
            self._db.executemany(
                "INSERT OR REPLACE INTO translations VALUES (?, ?, ?, ?, ?)",
                [(self.key(namespace, t), t, inter, back, int(trunc)) for t, inter, back, trunc in rows])

    def close(self) -> None:
        self._db.close()


def cache_namespace(forward: Translator, backward: Translator, settings: TranslationRequests) -> str:
    return json.dumps({"forward": forward.identity, "backward": backward.identity,
                       "runtime": [getattr(forward, "runtime", None), getattr(backward, "runtime", None)],
                       "settings": settings.cache_fields()}, sort_keys=True)


# --- the pipeline ----------------------------------------------------------------------

@dataclass
class BackTranslationResult:
    table: pd.DataFrame  # text, back_translation, status (one row per unique text)
    counts: dict[str, int]  # status -> number of unique texts
    translated: int  # unique texts translated in this run (cache misses)
    cached: int  # unique texts found in the cache
    seconds: float


def back_translate(texts: Sequence[str], forward: Translator, backward: Translator,
                   settings: TranslationRequests, checks: Checks = Checks(),
                   cache: TranslationCache | None = None) -> BackTranslationResult:
    """Back-translate the unique texts of ``texts``; each is translated at most once.

    Sampling is seeded once per direction with ``settings.seed`` (and seed + 1), so a run
    over the same texts with the same settings gives the same output.
    """
    start = time.perf_counter()
    unique = list(dict.fromkeys(str(t) for t in texts))
    to_translate = [t for t in unique if t.strip()]
    namespace = cache_namespace(forward, backward, settings)
    if settings.do_sample:
        # A sampled translation depends on the whole request (one RNG stream runs across the
        # batches), so it is reused only for the same set of texts (a rerun): sharing it with
        # other requests would make the output depend on what was translated before.
        request = hashlib.sha256("\n".join(sorted(to_translate)).encode()).hexdigest()
        namespace = f"{namespace}:request={request}"
    done = cache.get_many(namespace, to_translate) if cache else {}
    misses = [t for t in to_translate if t not in done]
    log.info("%d texts, %d unique, %d non-empty, %d cached, %d to translate",
             len(texts), len(unique), len(to_translate), len(done), len(misses))
    if misses:
        progress = lambda d, n: log.info("  %d/%d", d, n)  # noqa: E731
        torch.manual_seed(settings.seed)
        there = translate_sorted(misses, forward, settings.batch_size, progress)
        intermediates = [t.text for t in there]
        # an empty intermediate has nothing to translate back: it falls back as empty
        back_inputs = list(dict.fromkeys(t for t in intermediates if t.strip()))
        torch.manual_seed(settings.seed + 1)
        back = dict(zip(back_inputs, translate_sorted(back_inputs, backward, settings.batch_size, progress)))
        rows = []
        for text, inter in zip(misses, there):
            result = back.get(inter.text, Translation("", False))
            flags = inter.flags | result.flags  # a cut on either leg
            rows.append((text, inter.text, result.text, flags))
            done[text] = (inter.text, result.text, flags)
        if cache:
            cache.put_many(namespace, rows)

    records = []
    for text in unique:
        _, back_text, flags = done.get(text, ("", "", 0))
        status = check_back_translation(text, back_text, bool(flags & _OUTPUT_CUT), checks,
                                        input_truncated=bool(flags & _INPUT_CUT))
        records.append((text, back_text if status == OK else text, status))
    table = pd.DataFrame(records, columns=["text", "back_translation", "status"])
    counts = {reason: int(n) for reason, n in Counter(table["status"]).items()}
    return BackTranslationResult(table=table, counts=counts, translated=len(misses),
                                 cached=len(to_translate) - len(misses),
                                 seconds=time.perf_counter() - start)


def back_translate_units(texts: Sequence[str], forward: Translator, backward: Translator,
                         settings: TranslationRequests, checks: Checks = Checks(),
                         cache: TranslationCache | None = None, unit: str = "report") -> BackTranslationResult:
    """``back_translate`` with the text (``report``) or each sentence (``sentence``) as the unit.

    With sentences, the table still has one row per unique text: its back-translation is its
    sentences' (each one checked, and the original kept where it fell back), its status
    ``ok`` or the first fallback reason among its sentences; ``counts``, ``translated`` and
    ``cached`` count unique sentences.
    """
    if unit not in UNITS:
        raise ValueError(f"back-translation unit {unit!r}: expected one of {UNITS}")
    if unit == "report":
        return back_translate(texts, forward, backward, settings, checks, cache)
    unique = list(dict.fromkeys(str(t) for t in texts))
    sentences = {text: split_sentences(text) for text in unique}
    result = back_translate([s for parts in sentences.values() for s in parts], forward, backward,
                            settings, checks, cache)
    by_sentence = {row.text: (row.back_translation, row.status) for row in result.table.itertuples()}
    records = []
    for text in unique:
        parts = [by_sentence[s] for s in sentences[text]]
        if not parts:
            records.append((text, text, EMPTY_INPUT))
            continue
        status = next((st for _, st in parts if st != OK), OK)
        records.append((text, " ".join(back for back, _ in parts), status))
    table = pd.DataFrame(records, columns=["text", "back_translation", "status"])
    return BackTranslationResult(table=table, counts=result.counts, translated=result.translated,
                                 cached=result.cached, seconds=result.seconds)


def counts_table(counts: dict[str, int], unit: str = "report") -> pd.DataFrame:
    """reason, count (of unique ``unit``s) for every known reason (zeros included), then any others."""
    reasons = list(REASONS) + sorted(set(counts) - set(REASONS))
    return pd.DataFrame({"reason": reasons, "count": [int(counts.get(r, 0)) for r in reasons],
                         "unit": unit})


# --- Marian ----------------------------------------------------------------------------

def reached_max_length(sequences: torch.Tensor, eos_id: int, max_length: int) -> list[bool]:
    """Per row of generated (B, T) ids (decoder start first): no ``</s>``, or its first ``</s>``
    at position ``max_length - 1`` or later (where a forced EOS lands on a cut-off output)."""
    is_eos = sequences == eos_id  # (B, T)
    has_eos = is_eos.any(dim=1)
    first = is_eos.int().argmax(dim=1)  # (B,)
    return [bool(not e or int(f) + 1 >= max_length) for e, f in zip(has_eos.tolist(), first.tolist())]


def model_identity(source: str) -> str:
    """A local folder: sha256 over its model and tokenizer files; else the hub id as given."""
    folder = Path(source)
    if not folder.is_dir():
        return f"hub:{source}"
    digest = hashlib.sha256()
    for path in sorted(folder.iterdir()):
        if path.is_file() and path.suffix in {".json", ".safetensors", ".spm", ".bin", ".model"}:
            digest.update(path.name.encode() + b"\x00")
            with path.open("rb") as f:
                for block in iter(lambda: f.read(1 << 20), b""):
                    digest.update(block)
    return f"sha256:{digest.hexdigest()}"


class MarianTranslator:
    """A MarianMTModel + MarianTokenizer as a Translator."""

    def __init__(self, source: str, device: torch.device | str, settings: TranslationRequests):
        from transformers import MarianMTModel, MarianTokenizer

        self.source = source
        self.identity = model_identity(source)
        self.device = torch.device(device)
        self.settings = settings
        self.tokenizer = MarianTokenizer.from_pretrained(source)
        self.model = MarianMTModel.from_pretrained(source).to(self.device).eval()
        self.eos_id = self.model.config.eos_token_id
        self.runtime = runtime_identity(self.device)
        self.calls = 0

    def length(self, texts: Sequence[str]) -> list[int]:
        ids = self.tokenizer(list(texts), truncation=True, max_length=self.settings.max_length)["input_ids"]
        return [len(x) for x in ids]

    def input_cut(self, texts: Sequence[str]) -> list[bool]:
        """Whether the tokenizer's ``max_length`` cuts each input (its tail is never translated)."""
        ids = self.tokenizer(list(texts), truncation=False)["input_ids"]
        return [len(x) > self.settings.max_length for x in ids]

    @torch.inference_mode()
    def translate_batch(self, texts: Sequence[str]) -> list[Translation]:
        self.calls += 1
        s = self.settings
        batch = self.tokenizer(list(texts), padding=True, truncation=True, max_length=s.max_length,
                               return_tensors="pt").to(self.device)  # (B, S)
        kwargs = dict(num_beams=s.num_beams, do_sample=s.do_sample, max_length=s.max_length)
        if s.do_sample:
            kwargs["temperature"] = s.temperature
        out = self.model.generate(**batch, **kwargs)  # (B, T), starts with decoder_start
        cut = reached_max_length(out, self.eos_id, s.max_length)
        cut_inputs = self.input_cut(texts)
        decoded = self.tokenizer.batch_decode(out, skip_special_tokens=True)
        return [Translation(" ".join(text.split()), c, i) for text, c, i in zip(decoded, cut, cut_inputs)]


def runtime_identity(device: torch.device) -> dict:
    """Device and library versions: a sampled or beam output can differ across any of them."""
    import transformers

    name = torch.cuda.get_device_name(device) if device.type == "cuda" else device.type
    return {"device": f"{device.type}:{name}", "torch": torch.__version__, "transformers": transformers.__version__}
