import json
import math

import pandas as pd
import pytest

from crrg_clip.evaluate.aggregate import paired_difference, summarize
from crrg_clip.evaluate.comparison import compare_systems
from crrg_clip.tables import (
    PAIRED_AUC, TABLE1_METRICS, build_table1, build_table2, dataset_label, table1_columns, table2_columns, to_markdown,
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
    assert list(t.columns[: len(TABLE1_METRICS) + 3]) == ["model", "dataset", *TABLE1_METRICS, "source"]
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


def probe_doc(path, system, seed, auc, auc_replicates, ids="ids-a", resamples=None):
    reps = list(auc_replicates)
    doc = {"system": system, "kind": "probe", "seed": seed,
           "metrics": {m: {"value": auc, "ci_low": min(reps), "ci_high": max(reps)}
                       for m in ("AUC", "Accuracy", "AllNegativeAccuracy")},
           "bootstrap": {"resamples": resamples or len(reps), "seed": 0, "confidence": 0.95, "ids_sha256": ids,
                         "replicates": {m: reps for m in ("AUC", "Accuracy", "AllNegativeAccuracy")}}}
    path.write_text(json.dumps(doc))
    return path


def test_paired_auc_difference_uses_the_shared_resamples(tmp_path):
    """Two probes whose CIs overlap but which differ by the same amount on every resample: the
    paired CI of the difference excludes zero."""
    base = [0.70 + 0.01 * k for k in range(40)]  # spread wide, as a small test set's AUC is
    clip = [tmp_path / "c0.json", tmp_path / "c1.json"]
    probe_doc(clip[0], "rclip_radiologist", 0, 0.92, [b + 0.04 for b in base])
    probe_doc(clip[1], "rclip_radiologist", 1, 0.90, [b + 0.02 for b in base])
    ref = [probe_doc(tmp_path / "r0.json", "random_init", 0, 0.88, base)]
    diff = paired_difference(clip, ref, "AUC")
    assert diff["value"] == pytest.approx(0.91 - 0.88)
    assert diff["ci_low"] == pytest.approx(0.03) and diff["ci_high"] == pytest.approx(0.03)

    # the table renders the comparison the evaluation rule compare_probe wrote; it computes nothing
    comparison = tmp_path / "vs_random_init.json"
    comparison.write_text(json.dumps(compare_systems(
        system="rclip_radiologist", reference="random_init", reference_label="random_init",
        metrics_paths=clip, reference_paths=ref, metrics=["AUC"])))
    entries = []
    for system, paths in (("rclip_radiologist", clip), ("random_init", ref)):
        (tmp_path / f"{system}.summary.json").write_text(json.dumps(summarize(paths)))
        entries.append({"system": system, "summary": tmp_path / f"{system}.summary.json", "metrics": paths,
                        "model": system, "method": "m", "dataset": "demo", "source": "reproduced",
                        "comparison": comparison if system != "random_init" else None})
    t = build_table2(entries).set_index("model")
    assert t.loc["rclip_radiologist", PAIRED_AUC] == pytest.approx(0.03)
    assert t.loc["rclip_radiologist", "AUC_ci_low"] < t.loc["random_init", "AUC_ci_high"]  # CIs overlap
    assert t.loc["rclip_radiologist", f"{PAIRED_AUC}_ci_low"] > 0  # the paired CI does not
    assert math.isnan(t.loc["random_init", PAIRED_AUC])


def test_paired_difference_refuses_different_test_sets(tmp_path):
    a = [probe_doc(tmp_path / "a.json", "rclip_radiologist", 0, 0.9, [0.9, 0.91], ids="ids-a")]
    b = [probe_doc(tmp_path / "b.json", "random_init", 0, 0.8, [0.8, 0.81], ids="ids-b")]
    with pytest.raises(ValueError, match="b.json: bootstrap or test ids differ"):
        paired_difference(a, b, "AUC")
    old = [probe_doc(tmp_path / "old.json", "random_init", 0, 0.8, [0.8, 0.81], ids=None)]
    with pytest.raises(ValueError, match="not recorded"):
        paired_difference(old, old, "AUC")


# --- rows of ours and the table files (tables.table*_entries / write_table*) ----------------
from pathlib import Path  # noqa: E402

from crrg_clip.config import load_config  # noqa: E402
from crrg_clip.systems import Systems  # noqa: E402
from crrg_clip.tables import rsna_dataset_label, table1_entries, table2_entries, write_table1, write_table2  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def demo_config():
    return load_config(ROOT / "config" / "config.yaml")


def test_table1_entries_name_each_systems_files_and_dataset(demo_config):
    systems = Systems(demo_config)
    entries = {e["system"]: e for e in table1_entries(demo_config, systems)}
    assert list(entries) == systems.rrg_systems()
    opt = entries["rrg_opt"]
    assert opt["model"] == "RRG-opt" and opt["source"] == "reproduced"
    assert opt["dataset"] == "demo (rrg_opt)"
    assert opt["summary"] == "results/metrics/rrg/rrg_opt/summary.json"
    assert opt["comparison"] == "results/metrics/rrg/rrg_opt/vs_most_frequent.json"
    assert entries["rrg_opt-most_frequent"]["comparison"] is None
    real = {**demo_config, "data": {**demo_config["data"], "synthetic": False}}
    cell = {e["system"]: e for e in table1_entries(real, Systems(real))}["rrg_opt"]["dataset"]
    assert cell.startswith("MIMIC-CXR")


def test_table2_entries_and_dataset_cell(demo_config):
    entries = table2_entries(demo_config, Systems(demo_config))
    by = {e["system"]: e for e in entries}
    assert by["rclip_generated"]["model"] == "R-CLIP-opt"
    # the random-init baseline is the configured image encoder, not a fixed ResNet-50
    assert by["random_init"]["model"] == demo_config["rclip"]["image_encoder"].replace("resnet", "ResNet-")
    assert by["random_init"]["comparison"] is None and by["rclip_radiologist"]["comparison"]
    real = {**demo_config, "data": {**demo_config["data"], "synthetic": False}}
    assert rsna_dataset_label({**real, "rsna": {**real["rsna"], "train_subset": 0.01}}) == "RSNA 1%"
    assert rsna_dataset_label({**real, "rsna": {**real["rsna"], "train_subset": 70}}) == "RSNA 70 training images"


def test_write_tables_with_notes_provenance_and_the_all_negative_row(tmp_path, summary_path):
    entry = {"system": "rrg_opt", "model": "RRG-opt", "dataset": "demo", "source": "reproduced",
             "summary": str(summary_path), "comparison": None,
             "metrics": [str(summary_path.parent / f"seed{s}.json") for s in (0, 1)]}
    out = [tmp_path / n for n in ("t1.csv", "t1.md", "t1.provenance.json")]
    frame = write_table1([entry], *out, test_subsample="rrg_opt", labelers=["rule-based"], config={"seeds": [0]},
                         command="snakemake results/table1.csv")
    assert "RRG-opt" in set(frame["model"])
    md = out[1].read_text()
    assert "subsample `rrg_opt`" in md and "rule-based labeler" in md
    rows = json.loads(out[2].read_text())["rows"]
    assert [r["row"] for r in rows] == ["RRG-opt"] and rows[0]["values"]["BLEU4"] == pytest.approx(0.25)

    paths = []
    for seed in (0, 1):
        doc = metrics_doc(seed, 0.9, ["AUC", "Accuracy", "AllNegativeAccuracy"], system="random_init")
        paths.append(tmp_path / f"p{seed}.json")
        paths[-1].write_text(json.dumps(doc))
    (tmp_path / "p.summary.json").write_text(json.dumps(summarize(paths)))
    probe = {"system": "random_init", "model": "ResNet-18", "method": "Random Init (ours)", "dataset": "demo",
             "source": "reproduced", "summary": str(tmp_path / "p.summary.json"), "comparison": None,
             "metrics": [str(p) for p in paths]}
    out = [tmp_path / n for n in ("t2.csv", "t2.md", "t2.provenance.json")]
    frame = write_table2([probe], *out, config={}, command="snakemake results/table2.csv").set_index("model")
    assert frame.loc["All-negative", "Accuracy"] == pytest.approx(0.9)  # the probes' AllNegativeAccuracy
    assert math.isnan(frame.loc["All-negative", "AUC"])
    assert "All-negative" in out[1].read_text()
    rows = json.loads(out[2].read_text())["rows"]
    assert [r["row"] for r in rows] == ["ResNet-18 / Random Init (ours)",
                                        "All-negative / predicts 'no pneumonia' for every image"]
