"""mic-5 and ex-14 against a hand-computed case, 0/0 handling, and the vectorised bootstrap
replicates against a naive per-resample computation (sklearn for the micro metric)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import precision_recall_fscore_support

from crrg_clip.evaluate.bootstrap import bootstrap_indices
from crrg_clip.evaluate.chexpert_labeler import CHEXPERT_OBSERVATIONS
from crrg_clip.evaluate.clinical_efficacy import (
    CE_METRICS,
    MIC5_OBSERVATIONS,
    ce_metrics,
    ce_per_observation,
    ce_per_report,
    ce_replicates,
)

NAN = math.nan


def _table(rows: list[dict[str, float]]) -> pd.DataFrame:
    return pd.DataFrame([{o: r.get(o, NAN) for o in CHEXPERT_OBSERVATIONS} for r in rows])


# A: mixed; B: generated positives the reference lacks; C: nothing positive on either side.
GENERATED = _table([
    {"Cardiomegaly": 1, "Edema": -1, "Pleural Effusion": 0, "Support Devices": 1},
    {"Consolidation": 1, "Lung Opacity": 1},
    {"Pleural Effusion": 0, "Pneumothorax": 0},
])
REFERENCE = _table([
    {"Cardiomegaly": 1, "Edema": 1, "Pleural Effusion": 1, "Atelectasis": -1},
    {"No Finding": 1},
    {"Pleural Effusion": 0},
])


def test_hand_computed_case():
    per_report = ce_per_report(GENERATED, REFERENCE)
    # mic-5, positive = 1 or -1 on both sides:
    #   A: gen {Card, Edema} vs ref {Card, Edema, PE, Atel} -> tp 2, fp 0, fn 2
    #   B: gen {Cons} vs ref {} -> tp 0, fp 1, fn 0;   C: nothing -> 0, 0, 0
    assert per_report["mic5_tp"].sum(1).tolist() == [2, 0, 0]
    assert per_report["mic5_fp"].sum(1).tolist() == [0, 1, 0]
    assert per_report["mic5_fn"].sum(1).tolist() == [2, 0, 0]
    # ex-14, positive = 1 only:
    #   A: gen {Card, SD} vs ref {Card, Edema, PE} -> 1 / (1 + 0.5 * (1 + 2)) = 0.4
    #   B: gen {Cons, LO} vs ref {No Finding} -> 0;   C: tp = fp = fn = 0 -> 0
    np.testing.assert_allclose(per_report["ex14_f1"], [0.4, 0.0, 0.0])
    metrics = ce_metrics(per_report)
    assert set(metrics) == set(CE_METRICS)
    assert metrics["CE_P_mic5"] == pytest.approx(2 / 3)
    assert metrics["CE_R_mic5"] == pytest.approx(1 / 2)
    assert metrics["CE_F1_mic5"] == pytest.approx(2 * (2 / 3) * (1 / 2) / (2 / 3 + 1 / 2))
    assert metrics["CE_F1_ex14"] == pytest.approx(0.4 / 3)


def test_per_observation_including_never_predicted():
    per_obs = ce_per_observation(ce_per_report(GENERATED, REFERENCE))
    assert list(per_obs["mic5"]) == list(MIC5_OBSERVATIONS)
    assert list(per_obs["ex14"]) == list(CHEXPERT_OBSERVATIONS)
    # Atelectasis: reference uncertain (-> 1 in mic-5), never generated: 0/0 precision = 0
    atelectasis = per_obs["mic5"]["Atelectasis"]
    assert (atelectasis["tp"], atelectasis["fp"], atelectasis["fn"]) == (0, 0, 1)
    assert atelectasis["precision"] == 0.0 and atelectasis["recall"] == 0.0
    assert atelectasis["f1"] == 0.0 and atelectasis["support"] == 1
    assert per_obs["mic5"]["Edema"]["f1"] == 1.0  # generated -1 vs reference 1 both count
    # ex-14: Edema's generated -1 is not positive; No Finding missed; devices a false positive
    assert per_obs["ex14"]["Edema"]["fn"] == 1 and per_obs["ex14"]["Edema"]["tp"] == 0
    assert per_obs["ex14"]["No Finding"]["recall"] == 0.0
    assert per_obs["ex14"]["Support Devices"]["precision"] == 0.0
    assert per_obs["ex14"]["Cardiomegaly"] == {
        "precision": 1.0, "recall": 1.0, "f1": 1.0, "tp": 1, "fp": 0, "fn": 0, "support": 1}
    # never mentioned anywhere: all zero, no NaN in the JSON
    assert per_obs["ex14"]["Pleural Other"]["f1"] == 0.0
    assert not any(math.isnan(v) for block in per_obs.values() for d in block.values()
                   for v in d.values())


def test_nothing_positive_scores_zero_not_nan():
    metrics = ce_metrics(ce_per_report(GENERATED.iloc[[2]], REFERENCE.iloc[[2]]))
    assert metrics == {m: 0.0 for m in CE_METRICS}


def test_indices_select_reports():
    per_report = ce_per_report(GENERATED, REFERENCE)
    only_a = ce_metrics(per_report, np.array([0, 0]))
    assert only_a["CE_P_mic5"] == 1.0 and only_a["CE_R_mic5"] == 0.5
    assert only_a["CE_F1_ex14"] == pytest.approx(0.4)


def test_input_validation():
    with pytest.raises(ValueError, match="generated vs"):
        ce_per_report(GENERATED, REFERENCE.iloc[:2])
    with pytest.raises(ValueError, match="lack the columns"):
        ce_per_report(GENERATED.drop(columns=["Edema"]), REFERENCE)


def _random_labels(rng, n):
    values = rng.choice([1.0, 0.0, -1.0, NAN], p=[0.2, 0.3, 0.1, 0.4], size=(n, 14))
    return pd.DataFrame(values, columns=list(CHEXPERT_OBSERVATIONS))


def _naive(generated: pd.DataFrame, reference: pd.DataFrame) -> dict[str, float]:
    """Straight from the definitions, one resample at a time."""
    five = list(MIC5_OBSERVATIONS)
    pred = generated[five].isin([1.0, -1.0]).to_numpy().ravel()
    true = reference[five].isin([1.0, -1.0]).to_numpy().ravel()
    p, r, f, _ = precision_recall_fscore_support(
        true, pred, average="binary", zero_division=0)
    f1s = []
    for (_, g), (_, t) in zip(generated.iterrows(), reference.iterrows(), strict=True):
        gp, tp_ = set(g.index[g == 1.0]), set(t.index[t == 1.0])
        tp, fp, fn = len(gp & tp_), len(gp - tp_), len(tp_ - gp)
        f1s.append(0.0 if tp + fp + fn == 0 else tp / (tp + 0.5 * (fp + fn)))
    return {"CE_P_mic5": p, "CE_R_mic5": r, "CE_F1_mic5": f, "CE_F1_ex14": float(np.mean(f1s))}


def test_bootstrap_replicates_equal_naive_loop():
    rng = np.random.default_rng(7)
    generated, reference = _random_labels(rng, 25), _random_labels(rng, 25)
    per_report = ce_per_report(generated, reference)
    indices = bootstrap_indices(25, 60, seed=3)  # (R, N)
    replicates = ce_replicates(per_report, indices)
    assert ce_metrics(per_report, indices).keys() == replicates.keys()
    for r, row in enumerate(indices):
        naive = _naive(generated.iloc[row], reference.iloc[row])
        for metric in CE_METRICS:
            assert replicates[metric][r] == pytest.approx(naive[metric]), (r, metric)
    point = ce_metrics(per_report)
    for metric, value in _naive(generated, reference).items():
        assert point[metric] == pytest.approx(value)


def test_bootstrap_with_a_resample_without_positives():
    # resampling only report C gives 0/0 everywhere: replicates are 0, never NaN
    per_report = ce_per_report(GENERATED, REFERENCE)
    replicates = ce_replicates(per_report, np.array([[2, 2, 2], [0, 1, 2]]))
    assert all(v[0] == 0.0 for v in replicates.values())
    assert replicates["CE_F1_ex14"][1] == pytest.approx(0.4 / 3)
