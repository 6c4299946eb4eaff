"""Region detection and selection metrics against hand-computed values."""

import numpy as np
import pandas as pd
import pytest

from crrg_clip.evaluate.bootstrap import bootstrap_indices
from crrg_clip.evaluate.region_metrics import box_iou, region_metrics


def test_box_iou_by_hand():
    a = np.array([[0, 0, 10, 10], [0, 0, 10, 10], [0, 0, 0, 5]], float)
    b = np.array([[5, 0, 15, 10], [20, 20, 30, 30], [0, 0, 0, 5]], float)
    # 50 overlap / 150 union; disjoint; two zero-area boxes
    assert box_iou(a, b).tolist() == pytest.approx([1 / 3, 0.0, 0.0])


def test_detection_and_selection_metrics_by_hand():
    predictions = pd.DataFrame({
        "dicom_id": ["a", "a", "b", "b"],
        "region_index": [0, 1, 0, 1],
        "x1": [0.0, 0.0, 0.0, 0.0], "y1": [0.0, 0.0, 0.0, 0.0],
        "x2": [10.0, 0.0, 10.0, 10.0], "y2": [10.0, 0.0, 10.0, 10.0],
        "detected": [True, False, True, True],
        "selected": [True, False, True, False],
    })
    truth = pd.DataFrame({
        "dicom_id": ["a", "a", "b", "b"],
        "region_index": [0, 1, 0, 1],
        "x1": [0.0, 0.0, 5.0, np.nan], "y1": [0.0, 0.0, 0.0, np.nan],
        "x2": [10.0, 10.0, 15.0, np.nan], "y2": [10.0, 10.0, 10.0, np.nan],
        "box_valid": [True, True, True, False],
        "has_sentence": [True, True, False, False],
    })
    overall = region_metrics(predictions, truth, ["a", "b"], bootstrap_indices(2, 20, 0))["overall"]
    value = {k: v["value"] if isinstance(v, dict) else v for k, v in overall.items()}
    # three regions with a valid box: IoU 1, 0 (not detected), 1/3
    assert value["iou"] == pytest.approx((1 + 0 + 1 / 3) / 3)
    assert value["detection_rate"] == pytest.approx(2 / 3)
    # selected {a0, b0}, with a sentence {a0, a1}: tp 1
    assert value["selection_precision"] == pytest.approx(0.5)
    assert value["selection_recall"] == pytest.approx(0.5)


def test_prediction_rows_without_ground_truth_are_counted_not_called_negative():
    """A predicted region with no ground-truth row has an unknown truth: counting it as
    "no sentence" would make every selection of it a false positive."""
    predictions = pd.DataFrame({
        "dicom_id": ["a", "a", "b"], "region_index": [0, 1, 0],
        "x1": 0.0, "y1": 0.0, "x2": 10.0, "y2": 10.0,
        "detected": True, "selected": [True, True, True],
    })
    truth = pd.DataFrame({
        "dicom_id": ["a", "b"], "region_index": [0, 0],
        "x1": 0.0, "y1": 0.0, "x2": 10.0, "y2": 10.0,
        "box_valid": True, "has_sentence": [True, False],
    })
    result = region_metrics(predictions, truth, ["a", "b"], bootstrap_indices(2, 20, 0))
    assert result["without_ground_truth"] == {"rows": 1, "dicom_ids": ["a"]}
    assert result["overall"]["selection_precision"]["value"] == pytest.approx(0.5)  # a0 of {a0, b0}
    assert {r["region_index"] for r in result["per_region"]} == {0}


def test_region_bootstrap_resamples_the_given_ids_and_refuses_others():
    predictions = pd.DataFrame({"dicom_id": ["a", "b"], "region_index": [0, 0], "x1": 0.0, "y1": 0.0,
                                "x2": 10.0, "y2": 10.0, "detected": True, "selected": [True, False]})
    truth = predictions[["dicom_id", "region_index", "x1", "y1", "x2", "y2"]].assign(
        box_valid=True, has_sentence=[True, True])
    # a patient bootstrap's resamples: a twice, then b alone
    result = region_metrics(predictions, truth, ["a", "b"], [np.array([0, 0]), np.array([1])])
    recall = result["overall"]["selection_recall"]
    assert (recall["ci_low"], recall["ci_high"]) == pytest.approx((0.025, 0.975))  # replicates 1.0 and 0.0
    with pytest.raises(ValueError, match="ids"):
        region_metrics(predictions, truth, ["a", "c"], [np.array([0, 1])])


def test_fallback_picks_are_left_out_of_selection_metrics_and_counted():
    """Issue 14 item 22(a): a region selected only by the fallback is not the selector's call."""
    predictions = pd.DataFrame({
        "dicom_id": ["a", "a", "b", "b"], "region_index": [0, 1, 0, 1],
        "x1": 0.0, "y1": 0.0, "x2": 10.0, "y2": 10.0, "detected": True,
        "selected": [True, False, True, False],
        "fallback": [False, False, True, False],  # b0 was the fallback pick
    })
    truth = pd.DataFrame({
        "dicom_id": ["a", "a", "b", "b"], "region_index": [0, 1, 0, 1],
        "x1": 0.0, "y1": 0.0, "x2": 10.0, "y2": 10.0,
        "box_valid": True, "has_sentence": [True, True, False, False],
    })
    result = region_metrics(predictions, truth, ["a", "b"], bootstrap_indices(2, 20, 0))
    assert result["overall"]["selection_precision"]["value"] == pytest.approx(1.0)  # a0 of {a0}
    assert result["overall"]["selection_recall"]["value"] == pytest.approx(0.5)
    assert result["fallback_regions"] == 1
    older = region_metrics(predictions.drop(columns="fallback"), truth, ["a", "b"], bootstrap_indices(2, 20, 0))
    assert older["fallback_regions"] == 0 and older["overall"]["selection_precision"]["value"] == pytest.approx(0.5)
