"""Rule-based, offline CheXpert labeler: a report -> the 14 CheXpert observations.

Values follow the CheXpert convention: 1.0 positive, 0.0 negative, -1.0 uncertain, NaN
not mentioned. Per sentence, a spaCy ``SpanRuler`` finds the mention phrases of
``chexpert_phrases``; negspacy's NegEx component (run three times with three cue sets)
decides for each mention whether it is in a negation, an uncertainty or a "cannot
exclude"-type scope. A mention's value:

    strong uncertainty ("cannot exclude X")  -> -1
    else negation ("no X", "X is normal")    ->  0
    else uncertainty ("possible X")          -> -1
    else                                     ->  1

Anatomy phrases ("heart size") count only when negated (0) or uncertain (-1). Mentions are
aggregated over a report as CheXpert does: positive beats uncertain beats negative.
"No Finding" is derived (CheXpert labeler rule): 1.0 when none of the 12 pathology
observations (all but No Finding and Support Devices) is positive or uncertain, else NaN.

The spaCy pipeline is built once per process; every sentence is labeled once per labeler
(cache by exact sentence text), so repeated template sentences cost a dict lookup.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from crrg_clip.data.synthetic.findings import CHEXPERT_LABELS

CHEXPERT_OBSERVATIONS: tuple[str, ...] = tuple(CHEXPERT_LABELS)
NO_FINDING = "No Finding"
SUPPORT_DEVICES = "Support Devices"
# The observations whose positive/uncertain mention makes a report (or sentence) abnormal.
PATHOLOGIES: tuple[str, ...] = tuple(
    o for o in CHEXPERT_OBSERVATIONS if o not in (NO_FINDING, SUPPORT_DEVICES)
)

_SPANS_KEY = "chexpert_mentions"
_ANATOMY_PREFIX = "ANATOMY|"
_NEGATED = "chexpert_negated"
_UNCERTAIN = "chexpert_uncertain"
_STRONG_UNCERTAIN = "chexpert_strong_uncertain"
# precedence when one observation has several mentions: positive > uncertain > negative
_RANK = {1.0: 3, -1.0: 2, 0.0: 1}
_WHITESPACE = re.compile(r"\s+")


def _combine(current: float | None, new: float) -> float:
    if current is None or _RANK[new] > _RANK[current]:
        return new
    return current


@functools.cache
def _pipeline():
    """The spaCy pipeline (blank English: no model download), built once per process."""
    import spacy
    from negspacy.negation import Negex  # noqa: F401  (registers the "negex" factory)

    from . import chexpert_phrases as phrases

    nlp = spacy.blank("en")
    nlp.add_pipe("sentencizer")
    ruler = nlp.add_pipe(
        "span_ruler", config={"spans_key": _SPANS_KEY, "phrase_matcher_attr": "LOWER"}
    )
    patterns = [
        {"label": obs, "pattern": p} for obs, ps in phrases.MENTIONS.items() for p in ps
    ] + [
        {"label": _ANATOMY_PREFIX + obs, "pattern": p}
        for obs, ps in phrases.ANATOMY.items()
        for p in ps
    ]
    ruler.add_patterns(patterns)
    for name, extension, cues in (
        ("strong_uncertainty", _STRONG_UNCERTAIN, phrases.strong_uncertainty_termset()),
        ("negation", _NEGATED, phrases.negation_termset()),
        ("uncertainty", _UNCERTAIN, phrases.uncertainty_termset()),
    ):
        nlp.add_pipe(
            "negex",
            name=name,
            config={"neg_termset": cues, "extension_name": extension, "span_keys": [_SPANS_KEY]},
        )
    return nlp


@functools.cache
def _splitter():
    """Tokenizer + sentencizer only: cheap sentence splitting before the per-sentence cache."""
    import spacy

    nlp = spacy.blank("en")
    nlp.add_pipe("sentencizer")
    return nlp


def _mention_value(span) -> float | None:
    """A mention's CheXpert value, or None for an anatomy phrase that asserts nothing."""
    if span._.get(_STRONG_UNCERTAIN):
        value = -1.0
    elif span._.get(_NEGATED):
        value = 0.0
    elif span._.get(_UNCERTAIN):
        value = -1.0
    else:
        value = 1.0
    if span.label_.startswith(_ANATOMY_PREFIX) and value == 1.0:
        return None
    return value


def _doc_labels(doc) -> dict[str, float]:
    labels: dict[str, float] = {}
    for span in doc.spans[_SPANS_KEY]:
        value = _mention_value(span)
        if value is None:
            continue
        obs = span.label_.removeprefix(_ANATOMY_PREFIX)
        labels[obs] = _combine(labels.get(obs), value)
    return labels


def no_finding(labels: Mapping[str, float]) -> float:
    """CheXpert's derived "No Finding": 1.0 if no pathology is positive or uncertain, else NaN."""
    if any(labels.get(o) in (1.0, -1.0) for o in PATHOLOGIES):
        return math.nan
    return 1.0


def is_abnormal_sentence(labels_row: Mapping[str, float]) -> bool:
    """Whether a labeled sentence (or report) states an abnormality.

    True when any of the 12 pathology observations is positive or uncertain. Support Devices
    do not count: a tube is not a finding about the patient's chest, and CheXpert's own
    No Finding rule ignores them too. Accepts a dict or a row of ``ChexpertLabeler.label``.
    """
    return any(labels_row.get(o) in (1.0, -1.0) for o in PATHOLOGIES)


def _sentences(text: str) -> list[str]:
    text = _WHITESPACE.sub(" ", text or "").strip()
    if not text:
        return []
    return [s.text.strip() for s in _splitter()(text).sents if s.text.strip()]


class ChexpertLabeler:
    """Rule-based labeler; ``label(texts)`` -> one row per text, 14 float columns."""

    name = "rule-based"

    def __init__(self) -> None:
        self._sentence_cache: dict[str, dict[str, float]] = {}
        self._report_cache: dict[str, dict[str, float]] = {}

    def label_sentences(self, sentences: Sequence[str]) -> list[dict[str, float]]:
        """Mentioned observations of each sentence (no No Finding); cached per sentence."""
        todo = list(dict.fromkeys(s for s in sentences if s not in self._sentence_cache))
        if todo:
            for sentence, doc in zip(todo, _pipeline().pipe(todo, batch_size=256), strict=True):
                self._sentence_cache[sentence] = _doc_labels(doc)
        return [self._sentence_cache[s] for s in sentences]

    def _report(self, text: str) -> dict[str, float]:
        if text not in self._report_cache:
            labels: dict[str, float] = {}
            for sentence_labels in self.label_sentences(_sentences(text)):
                for obs, value in sentence_labels.items():
                    labels[obs] = _combine(labels.get(obs), value)
            labels[NO_FINDING] = no_finding(labels)
            self._report_cache[text] = labels
        return self._report_cache[text]

    def label(self, texts: Sequence[str]) -> pd.DataFrame:
        """(len(texts), 14) float DataFrame: 1 positive, 0 negative, -1 uncertain, NaN blank."""
        texts = ["" if t is None else str(t) for t in texts]
        unique = list(dict.fromkeys(texts))
        # split all new reports first so the pipeline sees one batch of new sentences
        self.label_sentences([s for t in unique if t not in self._report_cache for s in _sentences(t)])
        rows = np.full((len(texts), len(CHEXPERT_OBSERVATIONS)), np.nan)
        for i, text in enumerate(texts):
            labels = self._report(text)
            for j, obs in enumerate(CHEXPERT_OBSERVATIONS):
                if obs in labels:
                    rows[i, j] = labels[obs]
        return pd.DataFrame(rows, columns=list(CHEXPERT_OBSERVATIONS))


@functools.cache
def default_labeler() -> ChexpertLabeler:
    """The process-wide labeler (shared sentence cache)."""
    return ChexpertLabeler()


def label_reports(texts: Sequence[str]) -> pd.DataFrame:
    """``default_labeler().label(texts)``."""
    return default_labeler().label(texts)
