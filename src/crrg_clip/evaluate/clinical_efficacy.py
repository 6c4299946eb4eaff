"""Clinical-efficacy (CE) metrics from CheXpert labels of generated and reference reports.

Two conventions, as the report-generation literature computes them:

* **mic-5** (Miura et al. 2021, ysmiura/ifcc ``eval_prf.py``): on Atelectasis,
  Cardiomegaly, Consolidation, Edema and Pleural Effusion, a label is positive when it is
  1 or -1 (generated uncertain -> 1, negative/blank -> 0; reference uncertain or positive ->
  1, negative/blank -> 0: the same mapping on both sides). Precision, recall and F1 are
  micro-averaged: tp, fp and fn summed over reports and the five observations.
* **ex-14** (Nicolson et al. 2023, aehrc/cvt2distilgpt2 ``tools/metrics/chexbert.py``):
  on all 14 observations, positive = label 1 only (uncertain, negative, blank -> 0).
  Per report F1 = tp / (tp + 0.5 (fp + fn)); a report with tp = fp = fn = 0 scores 0;
  the metric is the mean over reports.

0/0 everywhere counts 0 (as sklearn's ``zero_division`` default and the ``fillna(0)`` of
cvt2distilgpt2 do): precision with no predicted positive, recall with no reference
positive, F1 with tp + fp + fn = 0.

``ce_per_report`` turns two label tables into per-report counts once; ``ce_metrics`` and
``ce_replicates`` compute the point values and the bootstrap replicates from those counts
(micro metrics resum the counts of each resample, vectorised over all resamples).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from .bootstrap import mean_replicates, sum_replicates
from .chexpert_labeler import CHEXPERT_OBSERVATIONS

MIC5_OBSERVATIONS: tuple[str, ...] = (
    "Atelectasis", "Cardiomegaly", "Consolidation", "Edema", "Pleural Effusion",
)
CE_METRICS: tuple[str, ...] = ("CE_P_mic5", "CE_R_mic5", "CE_F1_mic5", "CE_F1_ex14")


def _ratio(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    """numerator / denominator elementwise, 0 where the denominator is 0."""
    numerator = np.asarray(numerator, dtype=float)
    denominator = np.asarray(denominator, dtype=float)
    out = np.zeros(np.broadcast(numerator, denominator).shape)
    np.divide(numerator, denominator, out=out, where=denominator > 0)
    return out


def _precision_recall_f1(tp, fp, fn) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    tp, fp, fn = (np.asarray(a, dtype=float) for a in (tp, fp, fn))
    return _ratio(tp, tp + fp), _ratio(tp, tp + fn), _ratio(tp, tp + 0.5 * (fp + fn))


def _label_matrix(labels: pd.DataFrame, observations: tuple[str, ...], what: str) -> np.ndarray:
    missing = [o for o in observations if o not in labels.columns]
    if missing:
        raise ValueError(f"{what} labels lack the columns {missing}")
    return labels.loc[:, list(observations)].to_numpy(dtype=float)  # (N, K), NaN = blank


def mic5_positive(labels: pd.DataFrame, what: str = "") -> np.ndarray:
    """(N, 5) bool: positive or uncertain (ifcc's mapping, identical for both sides)."""
    values = _label_matrix(labels, MIC5_OBSERVATIONS, what)
    return (values == 1.0) | (values == -1.0)


def ex14_positive(labels: pd.DataFrame, what: str = "") -> np.ndarray:
    """(N, 14) bool: label 1 only (cvt2distilgpt2's mapping)."""
    return _label_matrix(labels, CHEXPERT_OBSERVATIONS, what) == 1.0


def _confusion(pred: np.ndarray, true: np.ndarray) -> dict[str, np.ndarray]:
    return {
        "tp": (pred & true).astype(np.int64),
        "fp": (pred & ~true).astype(np.int64),
        "fn": (~pred & true).astype(np.int64),
    }


def ce_per_report(generated: pd.DataFrame, reference: pd.DataFrame) -> dict[str, np.ndarray]:
    """Per-report counts, row i of ``generated`` against row i of ``reference``.

    Keys: ``mic5_tp/fp/fn`` (N, 5) per report and observation (columns in
    ``MIC5_OBSERVATIONS`` order), ``ex14_tp/fp/fn`` (N, 14) (``CHEXPERT_OBSERVATIONS``
    order) and ``ex14_f1`` (N,) the per-report example-based F1.
    """
    if len(generated) != len(reference):
        raise ValueError(f"{len(generated)} generated vs {len(reference)} reference label rows")
    per_report: dict[str, np.ndarray] = {}
    mic5 = _confusion(mic5_positive(generated, "generated"), mic5_positive(reference, "reference"))
    ex14 = _confusion(ex14_positive(generated, "generated"), ex14_positive(reference, "reference"))
    per_report.update({f"mic5_{k}": v for k, v in mic5.items()})
    per_report.update({f"ex14_{k}": v for k, v in ex14.items()})
    _, _, f1 = _precision_recall_f1(ex14["tp"].sum(1), ex14["fp"].sum(1), ex14["fn"].sum(1))
    per_report["ex14_f1"] = f1  # (N,)
    return per_report


def ce_replicates(per_report: dict[str, np.ndarray], indices) -> dict[str, np.ndarray]:
    """Each CE metric on each resample -> {metric: (R,)}.

    ``indices``: one 1-D array of report positions per resample (``bootstrap_indices``; an
    (R, N) matrix works too, and with the patient unit the rows differ in length); micro
    metrics sum the counts of the resampled reports, ex-14 averages their F1.
    """
    if isinstance(indices, np.ndarray) and indices.ndim == 1:
        indices = indices[None, :]
    counts = {k: sum_replicates(per_report[f"mic5_{k}"].sum(axis=1), indices) for k in ("tp", "fp", "fn")}
    precision, recall, f1 = _precision_recall_f1(counts["tp"], counts["fp"], counts["fn"])
    return {
        "CE_P_mic5": precision,
        "CE_R_mic5": recall,
        "CE_F1_mic5": f1,
        "CE_F1_ex14": mean_replicates(np.asarray(per_report["ex14_f1"], dtype=float), indices),
    }


def ce_metrics(per_report: dict[str, np.ndarray], indices: np.ndarray | None = None) -> dict:
    """Point values of ``CE_METRICS`` over the reports ``indices`` (1-D; None = all).

    Given an (R, N) index matrix instead, returns ``ce_replicates(per_report, indices)``.
    """
    n = len(per_report["ex14_f1"])
    if n == 0:
        raise ValueError("clinical efficacy needs at least one report")
    rows = np.arange(n) if indices is None else np.asarray(indices, dtype=np.int64)
    if rows.ndim == 2:
        return ce_replicates(per_report, rows)
    return {m: float(v[0]) for m, v in ce_replicates(per_report, rows[None, :]).items()}


def _per_observation(tp, fp, fn, observations) -> dict[str, dict[str, float]]:
    tp, fp, fn = tp.sum(axis=0), fp.sum(axis=0), fn.sum(axis=0)  # (K,)
    precision, recall, f1 = _precision_recall_f1(tp, fp, fn)
    return {
        obs: {
            "precision": float(precision[k]), "recall": float(recall[k]), "f1": float(f1[k]),
            "tp": int(tp[k]), "fp": int(fp[k]), "fn": int(fn[k]),
            "support": int(tp[k] + fn[k]),  # reference positives
        }
        for k, obs in enumerate(observations)
    }


def ce_per_observation(per_report: dict[str, np.ndarray]) -> dict[str, dict]:
    """Per-observation precision/recall/F1 (plain floats, for the metrics JSON).

    ``mic5``: the five observations in the mic-5 convention; ``ex14``: all 14 with the
    ex-14 (label 1 only) convention.
    """
    return {
        "mic5": _per_observation(per_report["mic5_tp"], per_report["mic5_fp"],
                                 per_report["mic5_fn"], MIC5_OBSERVATIONS),
        "ex14": _per_observation(per_report["ex14_tp"], per_report["ex14_fp"],
                                 per_report["ex14_fn"], CHEXPERT_OBSERVATIONS),
    }


def score_reports(labeler, generated: Sequence[str], reference: Sequence[str], indices,
                  confidence: float, suffix: str = "") -> dict:
    """The CE block of a metrics document: point values with bootstrap CIs (``metrics``),
    their ``replicates`` (on the caller's resamples, so they pair with the NLG metrics),
    the per-report ex-14 F1, the per-observation table and the two label tables.

    ``suffix`` names a second labeler's metrics (``CE_F1_mic5_chexbert``)."""
    from .bootstrap import with_ci

    generated_labels = labeler.label(list(generated))
    reference_labels = labeler.label(list(reference))
    per_report = ce_per_report(generated_labels, reference_labels)
    point = ce_metrics(per_report)
    replicates = ce_replicates(per_report, indices)
    return {
        "labeler": labeler.name,
        "metrics": {f"{m}{suffix}": with_ci(point[m], replicates[m], confidence) for m in CE_METRICS},
        "replicates": {f"{m}{suffix}": np.asarray(replicates[m]).tolist() for m in CE_METRICS},
        "per_report": {f"CE_F1_ex14{suffix}": np.asarray(per_report["ex14_f1"], dtype=float).tolist()},
        "per_observation": ce_per_observation(per_report),
        "generated_labels": generated_labels,
        "reference_labels": reference_labels,
    }
