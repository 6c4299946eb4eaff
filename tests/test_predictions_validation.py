import pandas as pd
import pytest

from crrg_clip.evaluate.predictions import (
    PredictionFileError, validate_probe, validate_region_predictions, validate_reports,
)

TEST_IDS = ["d1", "d2", "d3"]


def reports(ids, texts=None):
    return pd.DataFrame({"dicom_id": ids, "report": texts or ["ok ."] * len(ids)})


def test_valid_file_passes_sorted():
    out = validate_reports(reports(["d3", "d1", "d2"]), TEST_IDS, "r.parquet")
    assert out["dicom_id"].tolist() == TEST_IDS


@pytest.mark.parametrize("frame, needle", [
    (reports(["d1", "d2"]), "missing dicom_id(s) of the test split: d3"),
    (reports(["d1", "d2", "d3", "d3"]), "duplicate dicom_id(s): d3"),
    (reports(["d1", "d2", "d3", "x9"]), "not in the test split: x9"),
    (reports(TEST_IDS, ["a", "  ", "b"]), "empty report(s) for dicom_id(s): d2"),
    (reports(TEST_IDS, ["a", None, "b"]), "empty report(s) for dicom_id(s): d2"),
])
def test_refusals_name_file_and_ids(frame, needle):
    with pytest.raises(PredictionFileError) as info:
        validate_reports(frame, TEST_IDS, "results/rrg/x/reports_test.parquet")
    assert isinstance(info.value, ValueError)
    assert "results/rrg/x/reports_test.parquet" in str(info.value)
    assert needle in str(info.value)


def test_missing_column():
    with pytest.raises(PredictionFileError, match="missing column"):
        validate_reports(pd.DataFrame({"dicom_id": TEST_IDS}), TEST_IDS, "f")


def test_probe_refusals():
    test = pd.DataFrame({"patientId": ["p1", "p2"], "label": [0, 1]})
    good = pd.DataFrame({"patientId": ["p1", "p2"], "label": [0, 1], "prob": [0.2, 0.9]})
    assert len(validate_probe(good, test, "p.parquet")) == 2
    bad = pd.DataFrame({"patientId": ["p1", "p1", "p3"], "label": [1, 1, 0], "prob": [0.2, 1.5, 0.1]})
    with pytest.raises(PredictionFileError) as info:
        validate_probe(bad, test, "p.parquet")
    message = str(info.value)
    for needle in ("duplicate patientId(s): p1", "not in the test split: p3", "missing patientId(s) of the test split: p2",
                   "outside [0, 1]", "label differs"):
        assert needle in message


def test_region_predictions_need_every_region():
    rows = [{"dicom_id": d, "region_index": r, "x1": 0, "y1": 0, "x2": 1, "y2": 1, "detected": True,
             "selected": False, "generated_sentence": "", "reference_sentence": ""}
            for d in ["d1", "d2"] for r in range(3)]
    frame = pd.DataFrame(rows)
    assert len(validate_region_predictions(frame, ["d1", "d2"], 3, "p")) == 6
    with pytest.raises(PredictionFileError, match="without exactly 3 region rows: d2"):
        validate_region_predictions(frame.iloc[:-1], ["d1", "d2"], 3, "p")


@pytest.mark.parametrize("label", [float("nan"), None, "yes", 2])
def test_probe_label_missing_or_not_binary_is_a_prediction_file_error(label):
    test = pd.DataFrame({"patientId": ["p1", "p2"], "label": [0, 1]})
    frame = pd.DataFrame({"patientId": ["p1", "p2"], "label": [0, label], "prob": [0.2, 0.9]})
    with pytest.raises(PredictionFileError) as info:
        validate_probe(frame, test, "results/rclip/probe/x/predictions_test.parquet")
    message = str(info.value)
    assert "results/rclip/probe/x/predictions_test.parquet" in message and "p2" in message
    assert ("label missing or not 0/1" in message) or ("label differs" in message)
    if label != 2:
        assert "label missing or not 0/1 for patientId(s): p2" in message


def test_region_predictions_fallback_column_optional_and_boolean():
    rows = [{"dicom_id": d, "region_index": r, "x1": 0, "y1": 0, "x2": 1, "y2": 1, "detected": True,
             "selected": r == 0, "generated_sentence": "", "reference_sentence": ""}
            for d in ["d1", "d2"] for r in range(2)]
    frame = pd.DataFrame(rows)
    older = validate_region_predictions(frame, ["d1", "d2"], 2, "p")
    assert older["fallback"].dtype == bool and not older["fallback"].any()  # older files: no fallback
    newer = validate_region_predictions(frame.assign(fallback=[True, False, False, False]), ["d1", "d2"], 2, "p")
    assert newer["fallback"].tolist() == [True, False, False, False]
    with pytest.raises(PredictionFileError, match="fallback must be boolean"):
        validate_region_predictions(frame.assign(fallback=["yes", None, False, False]), ["d1", "d2"], 2, "p")


def test_an_empty_report_of_our_own_generator_is_scored_not_refused(tmp_path):
    import pandas as pd
    from crrg_clip.evaluate.predictions import PredictionFileError, validate_reports

    frame = pd.DataFrame({"dicom_id": ["a", "b"], "report": ["The lungs are clear.", ""]})
    with pytest.raises(PredictionFileError, match="empty report"):
        validate_reports(frame, ["a", "b"], tmp_path / "external.csv")
    kept = validate_reports(frame, ["a", "b"], tmp_path / "reports_test.parquet", allow_empty=True)
    assert kept["report"].tolist() == ["The lungs are clear.", ""]
