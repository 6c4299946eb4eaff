"""Region-level finding metrics: abnormal recall and hallucination rate per region."""

import math

import pandas as pd

from crrg_clip.evaluate.chexpert_labeler import ChexpertLabeler
from crrg_clip.evaluate.region_metrics import region_finding_metrics

EFFUSION = "Small left pleural effusion is present."
NO_EFFUSION = "No left pleural effusion."
OPACITY = "There is a patchy opacity in the right upper lung."


def _frame(rows):
    return pd.DataFrame(rows, columns=["dicom_id", "region_index", "generated_sentence", "reference_sentence"])


def test_recall_and_hallucination_by_hand():
    frame = _frame([
        ("a", 0, EFFUSION, EFFUSION),          # abnormal reference, found, same labels
        ("a", 1, NO_EFFUSION, OPACITY),        # abnormal reference, missed
        ("b", 0, OPACITY, EFFUSION),           # abnormal reference, abnormal but other finding
        ("b", 1, OPACITY, NO_EFFUSION),        # normal reference, hallucinated
        ("c", 1, "", ""),                      # no reference, nothing generated
        ("c", 0, NO_EFFUSION, ""),             # no reference, normal sentence
    ])
    out = region_finding_metrics(frame, ChexpertLabeler())
    overall = out["overall"]
    assert overall["abnormal_regions"] == 3 and overall["normal_regions"] == 3
    assert math.isclose(overall["abnormal_recall"], 2 / 3)
    assert math.isclose(overall["same_labels"], 1 / 3)
    assert math.isclose(overall["hallucination_rate"], 1 / 3)
    by_region = {r["region_index"]: r for r in out["per_region"]}
    assert math.isclose(by_region[0]["abnormal_recall"], 1.0)  # both region-0 findings carry an abnormality
    assert math.isclose(by_region[1]["hallucination_rate"], 0.5)
    assert math.isnan(by_region[0]["hallucination_rate"]) is False
    assert out["labeler"] == "rule-based"
