import numpy as np
import pytest

from crrg_clip.evaluate.bootstrap import bootstrap_indices
from crrg_clip.evaluate.classification import accuracy, all_negative_accuracy, auc, probe_metrics


def naive_auc(labels, probs):
    pos, neg = probs[labels == 1], probs[labels == 0]
    wins = sum((p > n) + 0.5 * (p == n) for p in pos for n in neg)
    return wins / (len(pos) * len(neg))


def test_auc_matches_pairwise_count_with_ties():
    rng = np.random.default_rng(1)
    labels = rng.integers(0, 2, 60)
    probs = np.round(rng.random(60), 1)  # many ties
    assert auc(labels, probs) == pytest.approx(naive_auc(labels, probs))


def test_accuracy_and_all_negative():
    labels = np.array([0, 0, 0, 1])
    probs = np.array([0.1, 0.6, 0.4, 0.5])
    assert accuracy(labels, probs) == pytest.approx(0.75)  # 0.5 counts as positive
    assert all_negative_accuracy(labels) == pytest.approx(0.75)
    assert np.isnan(auc(np.zeros(3), np.ones(3)))


def test_probe_metrics_cis_and_roc():
    rng = np.random.default_rng(2)
    labels = rng.integers(0, 2, 200)
    probs = np.clip(labels * 0.3 + rng.random(200) * 0.7, 0, 1)
    result = probe_metrics(labels, probs, bootstrap_indices(200, 300, 0))
    for name, stats in result["metrics"].items():
        assert stats["ci_low"] <= stats["value"] <= stats["ci_high"], name
    assert result["roc"]["fpr"][0] == 0.0 and result["roc"]["tpr"][-1] == 1.0
    again = probe_metrics(labels, probs, bootstrap_indices(200, 300, 0))
    assert again["metrics"] == result["metrics"]


def test_single_class_resamples_are_counted():
    labels = np.array([0, 0, 0, 0, 1])
    probs = np.array([0.1, 0.2, 0.3, 0.4, 0.9])
    result = probe_metrics(labels, probs, bootstrap_indices(5, 200, 0))
    undefined = int(np.isnan(result["replicates"]["AUC"]).sum())
    assert undefined > 20  # (4/5)^5 of the resamples draw no positive
    assert result["metrics"]["AUC"]["dropped_resamples"] == undefined
    assert result["metrics"]["Accuracy"]["dropped_resamples"] == 0
