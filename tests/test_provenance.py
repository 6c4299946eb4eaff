import json

import numpy as np
import pandas as pd
import pytest

from crrg_clip.cli import main
from crrg_clip.evaluate.aggregate import summarize
from crrg_clip.evaluate.nlg import NLGEvaluator
from crrg_clip.evaluate.rrg import evaluate_rrg_system, write_json
from crrg_clip.provenance import table_provenance
from crrg_clip.tables import build_table1, write_table, TABLE1_METRICS


class StubMeteor:
    """Stands in for the METEOR JVM: per-report stat = a number, corpus score = their mean."""

    def segment_stats(self, hyps, refs):
        return [str(len(set(h.split()) & set(r.split())) / max(1, len(r.split()))) for h, r in zip(hyps, refs)]

    def aggregate(self, stats):
        values = [float(s) for s in stats]
        return float(np.mean(values)), values


@pytest.fixture
def workflow_dir(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    findings = ["The heart is normal.", "No effusion.", "Lungs are clear.", "Small effusion left.",
                "The heart is normal.", "Mild edema."]
    ids = [f"d{i}" for i in range(6)]
    split = ["train", "train", "valid", "valid", "test", "test"]
    (tmp_path / "results/data").mkdir(parents=True)
    (tmp_path / "results/splits").mkdir(parents=True)
    pd.DataFrame({"dicom_id": ids, "split": split, "findings": findings, "has_findings": True}).to_parquet(
        "results/data/images.parquet")
    pd.DataFrame({"dicom_id": ids, "subject_id": range(6), "study_id": range(6), "split": split}).to_parquet(
        "results/splits/rrg_opt.parquet")
    run = tmp_path / "results/rrg/rrg_opt/seed0"
    for part in ("detector", "selector", "generator"):
        (run / part).mkdir(parents=True)
        (run / part / "model.safetensors").write_bytes(part.encode() * 10)
        (run / part / "run.json").write_text(json.dumps({"device": "cpu", "start": "t0", "end": "t1", "seed": 0}))
    pd.DataFrame({"dicom_id": ["d4", "d5"], "report": ["The heart is normal.", "No edema."],
                  "reference": findings[4:]}).to_parquet(run / "reports_test.parquet")
    (tmp_path / "results/demo_data").mkdir(parents=True)
    (tmp_path / "results/demo_data/manifest.json").write_text("{}")
    return tmp_path


def make_table(workflow_dir):
    evaluator = NLGEvaluator("rgrg", ["Lungs are clear.", "Small effusion left."],
                             ["The heart is normal.", "No effusion."], meteor=StubMeteor())
    doc = evaluate_rrg_system(
        system="rrg_opt", kind="rrg", seed=0, reports_path="results/rrg/rrg_opt/seed0/reports_test.parquet",
        images_path="results/data/images.parquet", split_path="results/splits/rrg_opt.parquet",
        tokenization="rgrg", resamples=50, bootstrap_seed=0,
        model_dirs=[f"results/rrg/rrg_opt/seed0/{p}" for p in ("detector", "selector", "generator")],
        upstream=["results/demo_data/manifest.json"], command="snakemake results/metrics/rrg/rrg_opt/seed0.json",
        evaluator=evaluator)
    write_json(doc, "results/metrics/rrg/rrg_opt/seed0.json")
    write_json(summarize(["results/metrics/rrg/rrg_opt/seed0.json"]), "results/metrics/rrg/rrg_opt/summary.json")
    entry = {"model": "RRG-opt", "dataset": "demo (rrg_opt)", "source": "reproduced",
             "summary": "results/metrics/rrg/rrg_opt/summary.json"}
    frame = build_table1([entry])
    write_table(frame, "results/table1.csv", "results/table1.md", ["model", "dataset"], TABLE1_METRICS, "T1")
    summary = json.loads(open(entry["summary"]).read())
    rows = [{"row": "RRG-opt", "model": "RRG-opt", "system": "rrg_opt", "source": "reproduced",
             "summary": entry["summary"], "metrics": ["results/metrics/rrg/rrg_opt/seed0.json"],
             "values": {m: summary["metrics"][m]["mean"] for m in TABLE1_METRICS}}]
    prov = table_provenance("results/table1.csv", rows, {"seeds": [0]}, "snakemake results/table1.csv",
                            ["results/table1.md"])
    open("results/table1.provenance.json", "w").write(json.dumps(prov))
    return doc, prov


def test_provenance_hashes_match_files(workflow_dir, capsys):
    doc, prov = make_table(workflow_dir)
    assert doc["n_reports"] == 2 and doc["metrics"]["BLEU1"]["ci_low"] <= doc["metrics"]["BLEU1"]["value"]
    chain = prov["rows"][0]["chain"]
    roles = {r["role"] for r in chain}
    assert {"summary", "metrics", "predictions", "model", "data", "split", "upstream"} <= roles
    models = [r for r in chain if r["role"] == "model"]
    assert len(models) == 6 and all(r["device"] == "cpu" and r["start"] == "t0" for r in models)
    import hashlib

    for record in chain:
        assert hashlib.sha256(open(record["path"], "rb").read()).hexdigest() == record["sha256"]
    assert prov["code_version"]["git_commit"] and "numpy" in prov["packages"]
    assert main(["provenance", "results/table1.csv", "--row", "RRG-opt", "--metric", "BLEU4"]) == 0
    out = capsys.readouterr().out
    assert "RRG-opt BLEU4" in out and "results/rrg/rrg_opt/seed0/generator/model.safetensors" in out
    assert "all files match" in out


def test_tampered_model_file_detected(workflow_dir, capsys):
    make_table(workflow_dir)
    (workflow_dir / "results/rrg/rrg_opt/seed0/selector/model.safetensors").write_bytes(b"tampered")
    assert main(["provenance", "results/table1.csv", "--row", "RRG-opt", "--metric", "BLEU4"]) == 1
    out = capsys.readouterr().out
    assert "[CHANGED] model seed 0: results/rrg/rrg_opt/seed0/selector/model.safetensors" in out
    assert "1 file(s) changed" in out


def test_cli_works_from_another_directory(workflow_dir, monkeypatch, capsys):
    make_table(workflow_dir)
    monkeypatch.chdir("/")
    assert main(["provenance", str(workflow_dir / "results/table1.csv")]) == 0
