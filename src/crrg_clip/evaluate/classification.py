"""Binary classification metrics for the RSNA probe: AUC, accuracy at 0.5, the all-negative
accuracy (the share of negatives: what a classifier answering "no pneumonia" always gets),
bootstrap CIs and ROC curve points."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from sklearn.metrics import roc_auc_score, roc_curve

from .bootstrap import with_ci

THRESHOLD = 0.5


def auc(labels: np.ndarray, probs: np.ndarray) -> float:
    """ROC AUC; NaN when only one class is present."""
    labels = np.asarray(labels, dtype=int)
    if labels.min(initial=0) == labels.max(initial=0):
        return float("nan")
    return float(roc_auc_score(labels, probs))


def accuracy(labels: np.ndarray, probs: np.ndarray, threshold: float = THRESHOLD) -> float:
    return float(np.mean((np.asarray(probs) >= threshold).astype(int) == np.asarray(labels)))


def all_negative_accuracy(labels: np.ndarray) -> float:
    return float(np.mean(np.asarray(labels) == 0))


def roc_points(labels: np.ndarray, probs: np.ndarray) -> dict[str, list[float]]:
    if len(set(np.asarray(labels).tolist())) < 2:
        return {"fpr": [], "tpr": [], "thresholds": []}
    fpr, tpr, thresholds = roc_curve(labels, probs)
    thresholds = np.where(np.isinf(thresholds), 1.0, thresholds)  # JSON has no infinity
    return {"fpr": fpr.tolist(), "tpr": tpr.tolist(), "thresholds": thresholds.tolist()}


def probe_metrics(
    labels: np.ndarray,
    probs: np.ndarray,
    indices: Sequence[np.ndarray],
    confidence: float = 0.95,
    threshold: float = THRESHOLD,
) -> dict:
    """Point estimates with percentile-bootstrap CIs over ``indices`` (one index array per
    resample, from ``bootstrap.bootstrap_plan``) and the ROC. A resample with one class
    only has no AUC: it is left out of the AUC interval and counted
    (``metrics.AUC.dropped_resamples``)."""
    labels = np.asarray(labels, dtype=int)  # (N,)
    probs = np.asarray(probs, dtype=float)  # (N,)
    replicates = {
        "AUC": np.array([auc(labels[i], probs[i]) for i in indices]),
        "Accuracy": np.array([accuracy(labels[i], probs[i], threshold) for i in indices]),
        "AllNegativeAccuracy": np.array([all_negative_accuracy(labels[i]) for i in indices]),
    }
    point = {
        "AUC": auc(labels, probs),
        "Accuracy": accuracy(labels, probs, threshold),
        "AllNegativeAccuracy": all_negative_accuracy(labels),
    }
    return {
        "metrics": {k: with_ci(point[k], replicates[k], confidence) for k in point},
        "replicates": {k: v.tolist() for k, v in replicates.items()},
        "roc": roc_points(labels, probs),
        "n": int(len(labels)),
        "n_positive": int(labels.sum()),
        "threshold": threshold,
    }
