import json
import math

import pandas as pd
import pytest

from crrg_clip.evaluate.aggregate import summarize
from crrg_clip.tables import (
    TABLE1_METRICS, build_table1, build_table2, dataset_label, table1_columns, table2_columns, to_markdown,
)

PROTOCOL_T1 = {
    "S&T": [0.299, 0.184, 0.121, 0.084, 0.124, 0.263, None],
    "ADAATT": [0.299, 0.185, 0.124, 0.088, 0.118, 0.266, None],
    "GPT-4o": [0.273, 0.128, 0.061, 0.032, 0.25, 0.177, None],
    "RRG-base": [0.224, 0.146, 0.101, 0.072, 0.104, 0.237, 0.429],
    "RRG-opt": [0.241, 0.157, 0.108, 0.078, 0.109, 0.239, 0.513],
}


def metrics_doc(seed, value, metrics, system="rrg_opt"):
    return {"system": system, "kind": "rrg", "seed": seed,
            "metrics": {m: {"value": value, "ci_low": value - 0.01, "ci_high": value + 0.01} for m in metrics},
            "bootstrap": {"resamples": 3, "seed": 0, "confidence": 0.95, "ids_sha256": "x",
                          "replicates": {m: [value - 0.01, value, value + 0.01] for m in metrics}}}


@pytest.fixture
def summary_path(tmp_path):
    paths = []
    for seed, value in ((0, 0.2), (1, 0.3)):
        path = tmp_path / f"seed{seed}.json"
        path.write_text(json.dumps(metrics_doc(seed, value, TABLE1_METRICS)))
        paths.append(path)
    summary = summarize(paths)
    out = tmp_path / "summary.json"
    out.write_text(json.dumps(summary))
    return out


def test_summary_mean_std_ci_across_seeds(summary_path):
    s = json.loads(summary_path.read_text())
    assert s["n_seeds"] == 2
    bleu = s["metrics"]["BLEU4"]
    assert bleu["mean"] == pytest.approx(0.25)
    assert bleu["std"] == pytest.approx(0.0707107, rel=1e-5)
    assert bleu["ci_low"] <= bleu["mean"] <= bleu["ci_high"]


def test_table1_schema_and_reported_rows(summary_path):
    t = build_table1([{"summary": summary_path, "model": "RRG-opt", "dataset": "demo", "source": "reproduced"}])
    assert list(t.columns) == table1_columns()
    assert list(t.columns[:11]) == ["model", "dataset", *TABLE1_METRICS, "source"]
    reported = t[t["source"] == "reported"].set_index("model")
    assert set(reported.index) == set(PROTOCOL_T1)
    for model, values in PROTOCOL_T1.items():
        for metric, value in zip(TABLE1_METRICS[:7], values):
            cell = reported.loc[model, metric]
            assert (math.isnan(cell) if value is None else cell == value), (model, metric)
        assert reported.loc[model, ["BLEU4_ci_low", "BLEU4_std", "TFIDF"]].isna().all()
        assert pd.isna(reported.loc[model, "n_seeds"])
    ours = t[t["source"] == "reproduced"].iloc[0]
    assert ours["BLEU4"] == pytest.approx(0.25) and ours["n_seeds"] == 2
    assert (t["source"] == "reported").sum() == 5 and set(t["source"]) == {"reported", "reproduced"}


def test_table2_schema_reported_rows_and_all_negative(tmp_path):
    docs = []
    for seed in (0,):
        doc = metrics_doc(seed, 0.8, ("AUC", "Accuracy", "AllNegativeAccuracy"), "rclip_radiologist")
        docs.append(tmp_path / "p.json")
        docs[-1].write_text(json.dumps(doc))
    (tmp_path / "s.json").write_text(json.dumps(summarize(docs)))
    entry = {"summary": tmp_path / "s.json", "model": "R-CLIP-base", "method": "radiologist reports",
             "dataset": "demo", "source": "reproduced"}
    t = build_table2([entry], {**entry, "model": "All-negative", "method": "all negative"})
    assert list(t.columns) == table2_columns()
    rep = t[t["source"] == "reported"]
    got = {(r.model, r.method): (r.AUC, r.Accuracy) for r in rep.itertuples()}
    assert got[("ConVIRT", "Random Init")][0] == 0.719 and math.isnan(got[("ConVIRT", "Random Init")][1])
    assert got[("ConVIRT", "ImageNet Init")][0] == 0.831
    assert got[("R-CLIP-base", "radiologist reports")] == (0.852, 0.788)
    assert got[("R-CLIP-opt", "generated reports")] == (0.848, 0.780)
    assert rep["AUC_ci_low"].isna().all()
    neg = t[t["model"] == "All-negative"].iloc[0]
    assert neg["Accuracy"] == pytest.approx(0.8) and math.isnan(neg["AUC"])
    md = to_markdown(t, ["model", "method", "dataset"], ["AUC", "Accuracy"], "T2")
    assert "0.852" in md and "0.800 [0.790, 0.809]" in md


def test_unknown_source_refused(summary_path):
    with pytest.raises(ValueError, match="unknown source"):
        build_table1([{"summary": summary_path, "model": "x", "dataset": "d", "source": "mixed"}])


def test_dataset_labels():
    assert dataset_label({"train": 0.5}, True, "rrg_opt") == "demo (rrg_opt)"
    assert dataset_label({"train": 7000, "valid": 1000, "test": 2000}, False) == "MIMIC-CXR 10,000 images (7000/1000/2000)"
    assert dataset_label({"train": 0.037, "valid": 0.037, "test": 0.037}, False) == "MIMIC-CXR 3.70% of each split"
