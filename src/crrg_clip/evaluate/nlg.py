"""Report-level NLG metrics on pycocoevalcap's scorers, with per-report statistics for the
bootstrap.

Metrics: BLEU-1..4 (corpus level, ``closest`` reference length, exactly pycocoevalcap's
formula), METEOR 1.5 (corpus level, aggregated by the METEOR jar from per-report
statistics), ROUGE-L and CIDEr-D (means of per-report scores), and TF-IDF: the mean
cosine similarity between each generated report and its reference in a TF-IDF space fit
on the training references.

CIDEr-D comes in two variants, both always computed. ``validation``: document frequencies
from the validation references (never the test references). ``paper_code``: what the
paper's code (RGRG's scorer) computed; its document frequencies were built with all
validation reports (lower-cased wordpunct tokens) as the references of a *single* image,
so every n-gram's DF is 1 (the same weight as an unseen n-gram's, log 1 = 0) and the IDF is
uniform: log(number of test reports), the library's ``ref_len``. ``CIDER`` is the variant
``evaluation.cider_df`` picks; ``CIDER_paper_code`` is always the paper code's.

Tokenisation (BLEU, ROUGE-L, CIDEr and the text sent to METEOR):
``rgrg``: only ``text.replace(".", " .")``, case kept (the paper's code; runs of whitespace
are collapsed so ROUGE-L's ``split(" ")`` sees no empty tokens);
``ptb``: pycocoevalcap's Stanford PTBTokenizer (lower-cased, punctuation removed).
TF-IDF always sees the raw text (scikit-learn's own tokenisation and lower-casing).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from pycocoevalcap.bleu.bleu_scorer import BleuScorer
from pycocoevalcap.cider.cider_scorer import CiderScorer
from pycocoevalcap.meteor.meteor import Meteor
from pycocoevalcap.rouge.rouge import Rouge
from sklearn.feature_extraction.text import TfidfVectorizer

from .bootstrap import mean_replicates, sum_replicates

TOKENIZATIONS = ("rgrg", "ptb")
CIDER_DF = ("validation", "paper_code")
NLG_METRICS = ("BLEU1", "BLEU2", "BLEU3", "BLEU4", "METEOR", "ROUGEL", "CIDER", "CIDER_paper_code", "TFIDF")
BLEU_N = 4
# pycocoevalcap's BleuScorer constants (so a zero count still gives a finite score).
_TINY = 1e-15
_SMALL = 1e-9


# ----------------------------------------------------------------------------- tokenisation
def tokenize_rgrg(texts: list[str]) -> list[str]:
    """The paper's code: split full stops off, nothing else (no lower-casing)."""
    return [" ".join(str(t).replace(".", " .").split()) for t in texts]


def tokenize_ptb(texts: list[str]) -> list[str]:
    """The COCO standard: Stanford PTBTokenizer, lower-cased, punctuation removed."""
    from pycocoevalcap.tokenizer.ptbtokenizer import PTBTokenizer

    if not texts:
        return []
    captions = {i: [{"caption": " ".join(str(t).split())}] for i, t in enumerate(texts)}
    tokenized = PTBTokenizer().tokenize(captions)
    return [tokenized[i][0] for i in range(len(texts))]


def tokenize(texts: list[str], method: str) -> list[str]:
    if method == "rgrg":
        return tokenize_rgrg(texts)
    if method == "ptb":
        return tokenize_ptb(texts)
    raise ValueError(f"unknown tokenization {method!r}; expected one of {TOKENIZATIONS}")


# ----------------------------------------------------------------------------- BLEU
def bleu_statistics(hypotheses: list[str], references: list[str], n: int = BLEU_N) -> np.ndarray:
    """Per-report BLEU sufficient statistics from pycocoevalcap's own cooking.

    Returns (N, 2 + 2n): testlen, reflen (closest), guess_1..n, correct_1..n.
    """
    scorer = BleuScorer(n=n)
    rows = []
    for hyp, ref in zip(hypotheses, references):
        scorer += (hyp, [ref])
        comps = scorer.ctest[-1]
        reflen = scorer._single_reflen(comps["reflen"], "closest", comps["testlen"])
        rows.append([comps["testlen"], reflen, *comps["guess"], *comps["correct"]])
    return np.asarray(rows, dtype=float).reshape(len(rows), 2 + 2 * n)  # (N, 2 + 2n)


def corpus_bleu(totals: np.ndarray, n: int = BLEU_N) -> np.ndarray:
    """BLEU-1..n from summed statistics, pycocoevalcap's formula.

    ``totals``: (..., 2 + 2n) sums of ``bleu_statistics`` rows; returns (..., n).
    """
    totals = np.asarray(totals, dtype=float)
    testlen, reflen = totals[..., 0], totals[..., 1]
    guess, correct = totals[..., 2 : 2 + n], totals[..., 2 + n : 2 + 2 * n]
    precisions = (correct + _TINY) / (guess + _SMALL)  # (..., n)
    cumulative = np.cumprod(precisions, axis=-1)
    bleus = cumulative ** (1.0 / np.arange(1, n + 1))
    ratio = (testlen + _TINY) / (reflen + _SMALL)
    penalty = np.where(ratio < 1, np.exp(1 - 1 / np.maximum(ratio, _TINY)), 1.0)
    return bleus * penalty[..., None]


# ----------------------------------------------------------------------------- CIDEr
class ValidationDFCiderScorer(CiderScorer):
    """pycocoevalcap's CIDEr-D with document frequencies from a fixed reference corpus.

    The library derives the document frequencies (and the log corpus size ``ref_len``)
    from the references of the very images being scored; here both come from
    ``df_references`` (one list of reference strings per validation image), and the
    per-image scoring (``compute_cider``) is the library's, unchanged.
    """

    def __init__(self, df_references: list[list[str]], n: int = 4, sigma: float = 6.0):
        if not df_references:
            raise ValueError("CIDEr document frequencies need at least one validation reference")
        self._df_log_size = float(np.log(float(len(df_references))))
        super().__init__(n=n, sigma=sigma)
        counter = CiderScorer(n=n, sigma=sigma)
        for refs in df_references:
            counter.cook_append(None, refs)
        counter.compute_doc_freq()
        self._validation_df = dict(counter.document_frequency)

    # compute_cider assigns self.ref_len = log(len(self.crefs)); keep the validation size.
    @property
    def ref_len(self) -> float:
        return self._df_log_size

    @ref_len.setter
    def ref_len(self, _value) -> None:
        pass

    def compute_doc_freq(self) -> None:
        self.document_frequency = _FrozenDF(self._validation_df)

    def compute_score(self, option=None, verbose=0):
        self.compute_doc_freq()
        scores = np.asarray(self.compute_cider(), dtype=float)
        return float(scores.mean()) if scores.size else float("nan"), scores


class _FrozenDF(dict):
    """Document frequencies; unseen n-grams count 0 without being inserted."""

    def __missing__(self, key):
        return 0.0


def cider_scores(hyps: list[str], refs: list[str], df_refs: list[str]) -> np.ndarray:
    scorer = ValidationDFCiderScorer([[r] for r in df_refs])
    for hyp, ref in zip(hyps, refs):
        scorer += (hyp, [ref])
    return scorer.compute_score()[1]


class UniformIDFCiderScorer(CiderScorer):
    """The paper code's CIDEr-D: every document frequency 1, so every n-gram weighs
    log(number of reports scored together) (``ref_len``, set by the library's
    ``compute_cider``); the per-image scoring is the library's, unchanged. With a single
    report that weight is log 1 = 0 and the score 0, as in the paper's code."""

    def compute_score(self, option=None, verbose=0):
        self.document_frequency = _FrozenDF()  # DF 0 and DF 1 both give log(max(1, df)) = 0
        scores = np.asarray(self.compute_cider(), dtype=float)
        return float(scores.mean()) if scores.size else float("nan"), scores


def paper_code_cider_scores(hyps: list[str], refs: list[str]) -> np.ndarray:
    scorer = UniformIDFCiderScorer()
    for hyp, ref in zip(hyps, refs):
        scorer += (hyp, [ref])
    return scorer.compute_score()[1]


# ----------------------------------------------------------------------------- ROUGE-L
def rouge_l_scores(hyps: list[str], refs: list[str]) -> np.ndarray:
    """pycocoevalcap's ROUGE-L per report; 0 where either tokenised text is empty (the
    library splits "" into one empty token, so "" against "" would score 1.0)."""
    rouge = Rouge()
    return np.array([rouge.calc_score([h], [r]) if h.split() and r.split() else 0.0
                     for h, r in zip(hyps, refs)], dtype=float)


# ----------------------------------------------------------------------------- METEOR
class ReusableMeteor(Meteor):
    """One METEOR 1.5 JVM (start-up ~8 s) reused for every system and bootstrap resample.

    ``segment_stats`` asks the jar for each report's sufficient statistics once;
    ``aggregate`` sends any (resampled) list of them back with ``EVAL`` and reads the
    jar's own corpus-level score, which is exactly what ``Meteor.compute_score`` returns.
    """

    def segment_stats(self, hypotheses: list[str], references: list[str]) -> list[str]:
        with self.lock:
            return [
                self._stat(" ".join(h.split()), [" ".join(r.replace("|||", "").split())])
                for h, r in zip(hypotheses, references)
            ]

    def aggregate(self, stats: list[str]) -> tuple[float, list[float]]:
        if not stats:
            return float("nan"), []
        with self.lock:
            self.meteor_p.stdin.write(("EVAL ||| " + " ||| ".join(stats) + "\n").encode())
            self.meteor_p.stdin.flush()
            per_segment = [float(self.meteor_p.stdout.readline().strip()) for _ in stats]
            score = float(self.meteor_p.stdout.readline().strip())
        return score, per_segment


_SHARED_METEOR: ReusableMeteor | None = None


def shared_meteor() -> ReusableMeteor:
    """The process's single METEOR scorer, started on first use."""
    global _SHARED_METEOR
    if _SHARED_METEOR is None or _SHARED_METEOR.meteor_p.poll() is not None:
        _SHARED_METEOR = ReusableMeteor()
    return _SHARED_METEOR


# ----------------------------------------------------------------------------- TF-IDF
class TfidfSimilarity:
    """Cosine similarity of TF-IDF vectors, the vocabulary and IDF fit on training references."""

    def __init__(self, training_references: list[str]):
        if not training_references:
            raise ValueError("TF-IDF needs at least one training reference to fit on")
        self.vectorizer = TfidfVectorizer()  # L2-normalised rows: cosine = dot product
        self.vectorizer.fit(training_references)

    def scores(self, hypotheses: list[str], references: list[str]) -> np.ndarray:
        hyp = self.vectorizer.transform(hypotheses)  # (N, V) sparse, rows L2-normalised
        ref = self.vectorizer.transform(references)
        return np.asarray(hyp.multiply(ref).sum(axis=1), dtype=float).ravel()  # (N,)


# ----------------------------------------------------------------------------- evaluator
@dataclass
class ReportScores:
    """Everything the point estimates and the bootstrap need for one system."""

    ids: list[str]
    bleu_stats: np.ndarray  # (N, 2 + 2n)
    meteor_stats: list[str]
    rouge: np.ndarray  # (N,)
    cider: np.ndarray  # (N,) the variant evaluation.cider_df picks
    cider_paper_code: np.ndarray  # (N,)
    tfidf: np.ndarray  # (N,)
    empty_after_tokenization: dict = field(default_factory=dict)  # {"hypotheses": k, "references": k}
    meteor_point: float = math.nan
    meteor_per_report: list[float] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.ids)


class NLGEvaluator:
    """Scores any number of systems on one test set with shared resources.

    ``validation_references`` feed CIDEr's document frequencies; ``training_references``
    fit the TF-IDF space; ``cider_df`` picks the CIDEr reported as ``CIDER``
    (``validation`` or ``paper_code``; both are always scored). One METEOR JVM is used for
    everything (``shared_meteor``).
    """

    def __init__(
        self,
        tokenization: str,
        validation_references: list[str],
        training_references: list[str],
        meteor: ReusableMeteor | None = None,
        cider_df: str = "validation",
    ):
        if tokenization not in TOKENIZATIONS:
            raise ValueError(f"unknown tokenization {tokenization!r}; expected one of {TOKENIZATIONS}")
        if cider_df not in CIDER_DF:
            raise ValueError(f"unknown evaluation.cider_df {cider_df!r}; expected one of {CIDER_DF}")
        self.tokenization = tokenization
        self.cider_df = cider_df
        self._df_refs = tokenize(list(validation_references), tokenization)
        self._tfidf = TfidfSimilarity(list(training_references))
        self._meteor = meteor

    @property
    def meteor(self) -> ReusableMeteor:
        if self._meteor is None:
            self._meteor = shared_meteor()
        return self._meteor

    def score(self, ids: list[str], hypotheses: list[str], references: list[str]) -> ReportScores:
        if not (len(ids) == len(hypotheses) == len(references)):
            raise ValueError("ids, hypotheses and references differ in length")
        tokens = tokenize(list(hypotheses) + list(references), self.tokenization)
        hyps, refs = tokens[: len(ids)], tokens[len(ids) :]
        paper_code = paper_code_cider_scores(hyps, refs)
        scores = ReportScores(
            ids=list(ids),
            bleu_stats=bleu_statistics(hyps, refs),
            meteor_stats=self.meteor.segment_stats(hyps, refs),
            rouge=rouge_l_scores(hyps, refs),
            cider=paper_code if self.cider_df == "paper_code" else cider_scores(hyps, refs, self._df_refs),
            cider_paper_code=paper_code,
            tfidf=self._tfidf.scores(list(hypotheses), list(references)),
            # e.g. a punctuation-only report under ptb: scored, but counted
            empty_after_tokenization={"hypotheses": sum(not h.split() for h in hyps),
                                      "references": sum(not r.split() for r in refs)},
        )
        scores.meteor_point, scores.meteor_per_report = self.meteor.aggregate(scores.meteor_stats)
        return scores

    def point(self, scores: ReportScores) -> dict[str, float]:
        bleu = corpus_bleu(scores.bleu_stats.sum(axis=0))
        return {
            **{f"BLEU{k + 1}": float(bleu[k]) for k in range(BLEU_N)},
            "METEOR": float(scores.meteor_point),
            "ROUGEL": float(scores.rouge.mean()),
            "CIDER": float(scores.cider.mean()),
            "CIDER_paper_code": float(scores.cider_paper_code.mean()),
            "TFIDF": float(scores.tfidf.mean()),
        }

    def replicates(self, scores: ReportScores, indices: Sequence[np.ndarray]) -> dict[str, np.ndarray]:
        """Each metric recomputed on every resample (one index array per replicate; the
        arrays may differ in size, as a patient bootstrap's do)."""
        bleu = corpus_bleu(sum_replicates(scores.bleu_stats, indices))  # (R, n)
        meteor = np.array(
            [self.meteor.aggregate([scores.meteor_stats[i] for i in row])[0] for row in indices]
        )
        out = {f"BLEU{k + 1}": bleu[:, k] for k in range(BLEU_N)}
        out["METEOR"] = meteor
        out["ROUGEL"] = mean_replicates(scores.rouge, indices)
        out["CIDER"] = mean_replicates(scores.cider, indices)
        out["CIDER_paper_code"] = mean_replicates(scores.cider_paper_code, indices)
        out["TFIDF"] = mean_replicates(scores.tfidf, indices)
        return out
