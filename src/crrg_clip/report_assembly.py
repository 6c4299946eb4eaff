"""Assemble one report per image from its selected regions' generated sentences.

A region's generated text may hold several sentences (a region's reference phrase joins
every report sentence attached to it, so one sentence often recurs across regions): it is
split into sentences first, and deduplication works sentence by sentence.
Sentences go in anatomical order (``region_index``); empty sentences are skipped, exact
duplicates (after case folding and whitespace collapsing) are dropped, and a sentence is a
near-duplicate, and dropped, when its similarity to a sentence already kept exceeds
``threshold``. The paper's code used BERTScore F1 > 0.9; BERTScore needs a pretrained
RoBERTa that is not available offline, so the similarity is a config choice:

- ``token_f1``: F1 of the lower-cased word-token multisets (BERTScore's F1 with exact
  token matches instead of embedding matches);
- ``tfidf_cosine``: cosine of TF-IDF vectors, IDF from all sentences being assembled
  (smoothed: ``log((1 + n) / (1 + df)) + 1``).
"""

from __future__ import annotations

import math
import re
from collections import Counter
from typing import Callable, Iterable

import pandas as pd

SIMILARITIES = ("token_f1", "tfidf_cosine")
_TOKEN = re.compile(r"[a-z0-9]+")


def tokens(sentence: str) -> list[str]:
    return _TOKEN.findall(sentence.lower())


_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9])")


def split_sentences(text: str) -> list[str]:
    """Split at a full stop followed by whitespace and a capital or digit ("2.2 cm" stays whole)."""
    return [part for part in _SENTENCE_END.split(" ".join(str(text).split())) if part]


def normalise(sentence: str) -> str:
    return " ".join(sentence.split()).casefold()


def token_f1(a: str, b: str) -> float:
    """F1 of shared word tokens (multiset overlap); 1.0 for two token-less sentences."""
    ta, tb = Counter(tokens(a)), Counter(tokens(b))
    if not ta and not tb:
        return 1.0
    overlap = sum((ta & tb).values())
    if overlap == 0:
        return 0.0
    precision, recall = overlap / sum(ta.values()), overlap / sum(tb.values())
    return 2 * precision * recall / (precision + recall)


class TfidfCosine:
    """Cosine similarity of TF-IDF vectors with IDF fitted on a collection of sentences."""

    def __init__(self, corpus: Iterable[str]):
        documents = [set(tokens(s)) for s in corpus]
        df = Counter(t for doc in documents for t in doc)
        n = len(documents)
        self.idf = {t: math.log((1 + n) / (1 + c)) + 1 for t, c in df.items()}
        self.unseen_idf = math.log(1 + n) + 1

    def vector(self, sentence: str) -> dict[str, float]:
        counts = Counter(tokens(sentence))
        return {t: c * self.idf.get(t, self.unseen_idf) for t, c in counts.items()}

    def __call__(self, a: str, b: str) -> float:
        va, vb = self.vector(a), self.vector(b)
        if not va and not vb:
            return 1.0
        dot = sum(w * vb.get(t, 0.0) for t, w in va.items())
        norm = math.sqrt(sum(w * w for w in va.values())) * math.sqrt(sum(w * w for w in vb.values()))
        return dot / norm if norm else 0.0


def make_similarity(name: str, corpus: Iterable[str] = ()) -> Callable[[str, str], float]:
    if name == "token_f1":
        return token_f1
    if name == "tfidf_cosine":
        return TfidfCosine(corpus)
    raise ValueError(f"unknown dedup similarity {name!r}; choose one of {SIMILARITIES}")


def assemble_sentences(sentences: list[str], similarity: Callable[[str, str], float],
                       threshold: float) -> list[str]:
    """Keep sentences in the given order, dropping blanks, exact and near-duplicates."""
    kept: list[str] = []
    seen: set[str] = set()
    for sentence in sentences:
        sentence = " ".join(str(sentence).split())
        key = normalise(sentence)
        if not key or key in seen:
            continue
        if any(similarity(sentence, other) > threshold for other in kept):
            continue
        kept.append(sentence)
        seen.add(key)
    return kept


def assemble_reports(predictions: pd.DataFrame, *, similarity: str = "token_f1",
                     threshold: float = 0.9, dicom_ids: Iterable[str] | None = None) -> pd.DataFrame:
    """Per image: ``dicom_id, report`` from rows ``dicom_id, region_index, selected, generated_sentence``.

    ``dicom_ids`` lists every image that must get a row (an image with nothing selected gets
    an empty report rather than disappearing); by default the images in ``predictions``.
    """
    missing = [c for c in ("dicom_id", "region_index", "selected", "generated_sentence") if c not in predictions]
    if missing:
        raise ValueError(f"predictions lack column(s) {missing}")
    chosen = predictions[predictions["selected"].astype(bool)]
    chosen = chosen[chosen["generated_sentence"].fillna("").str.strip() != ""]
    score = make_similarity(similarity, chosen["generated_sentence"].tolist())
    by_image = {dicom_id: [sentence for text in group.sort_values("region_index")["generated_sentence"]
                           for sentence in split_sentences(text)]
                for dicom_id, group in chosen.groupby("dicom_id", sort=False)}
    order = list(dict.fromkeys(predictions["dicom_id"])) if dicom_ids is None else list(dicom_ids)
    reports = [" ".join(assemble_sentences(by_image.get(d, []), score, threshold)) for d in order]
    return pd.DataFrame({"dicom_id": pd.Series(order, dtype=str), "report": reports})
