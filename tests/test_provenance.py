import hashlib
import json
import runpy
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from crrg_clip.cli import main
from crrg_clip.evaluate.comparison import compare_systems
from crrg_clip.evaluate.aggregate import summarize
from crrg_clip.evaluate.nlg import NLGEvaluator
from crrg_clip.evaluate.rrg import evaluate_rrg_system, write_json
from crrg_clip.provenance import ProvenanceError

ROOT = Path(__file__).resolve().parents[1]


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
    pd.DataFrame({"dicom_id": ids, "subject_id": [0, 1, 2, 3, 4, 4], "split": split, "findings": findings,
                  "has_findings": True}).to_parquet("results/data/images.parquet")
    pd.DataFrame({"dicom_id": ids, "subject_id": [0, 1, 2, 3, 4, 4], "study_id": range(6), "split": split}).to_parquet(
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


def evaluate(report="No edema."):
    pd.DataFrame({"dicom_id": ["d4", "d5"], "report": ["The heart is normal.", report],
                  "reference": ["The heart is normal.", "Mild edema."]}).to_parquet(
        "results/rrg/rrg_opt/seed0/reports_test.parquet")
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
    return doc


ENTRY = {"system": "rrg_opt", "model": "RRG-opt", "dataset": "demo (rrg_opt)", "source": "reproduced",
         "summary": "results/metrics/rrg/rrg_opt/summary.json", "metrics": ["results/metrics/rrg/rrg_opt/seed0.json"]}


def run_table_script(name, entries):
    """The rule's script itself, with the object Snakemake injects stood in for."""
    Path("results/logs").mkdir(parents=True, exist_ok=True)
    fake = SimpleNamespace(
        params=SimpleNamespace(entries=entries, config={"seeds": [0]}, command=f"snakemake results/{name}.csv",
                               test_subsample="rrg_opt", labelers=["rule-based"]),
        output=SimpleNamespace(csv=f"results/{name}.csv", md=f"results/{name}.md",
                               provenance=f"results/{name}.provenance.json"),
        log=[f"results/logs/{name}.log"])
    runpy.run_path(str(ROOT / "workflow" / "scripts" / f"{name}.py"), init_globals={"snakemake": fake})
    return json.loads(Path(f"results/{name}.provenance.json").read_text())


def make_table(workflow_dir):
    doc = evaluate()
    write_json(summarize(ENTRY["metrics"]), ENTRY["summary"])
    return doc, run_table_script("table1", [ENTRY])


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
    assert "[ok] rendering: results/table1.md" in out and "[ok] summary of seeds [0]" in out
    header = Path("results/table1.md").read_text().splitlines()[4]
    assert "| CIDER |" in header and "| CIDER_paper_code |" in header  # both CIDEr variants shown
    assert prov["rows"][0]["values"]["CIDER_paper_code"] == doc["metrics"]["CIDER_paper_code"]["value"]


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


@pytest.mark.parametrize("path, line", [
    ("results/table1.csv", "[CHANGED] results/table1.csv"),
    ("results/table1.md", "[CHANGED] rendering: results/table1.md"),
    ("results/metrics/rrg/rrg_opt/summary.json", "[CHANGED] summary: results/metrics/rrg/rrg_opt/summary.json"),
    ("results/metrics/rrg/rrg_opt/seed0.json", "[CHANGED] metrics seed 0: results/metrics/rrg/rrg_opt/seed0.json"),
])
def test_tampered_table_rendering_summary_or_metrics_detected(workflow_dir, capsys, path, line):
    make_table(workflow_dir)
    with open(path, "a") as handle:
        handle.write("\n")
    assert main(["provenance", "results/table1.csv"]) == 1
    out = capsys.readouterr().out
    assert line in out
    assert "changed or missing since the table was made" in out


def test_summary_of_other_metrics_is_refused_and_reported(workflow_dir, capsys):
    """A summary made before its seed's metrics were rewritten holds stale numbers."""
    evaluate()
    write_json(summarize(ENTRY["metrics"]), ENTRY["summary"])
    evaluate(report="Mild edema.")  # the metrics change; the summary is not rerun
    with pytest.raises(ProvenanceError, match="summary.json.*seed0.json changed since the summary"):
        run_table_script("table1", [ENTRY])
    # a table recorded by older code, whose summary is not tied to its metrics files
    write_json(summarize(ENTRY["metrics"]), ENTRY["summary"])
    run_table_script("table1", [ENTRY])
    untied = json.loads(Path(ENTRY["summary"]).read_text())
    del untied["metrics_sha256"]
    write_json(untied, ENTRY["summary"])
    prov = json.loads(Path("results/table1.provenance.json").read_text())
    prov["rows"][0]["chain"][0]["sha256"] = hashlib.sha256(Path(ENTRY["summary"]).read_bytes()).hexdigest()
    Path("results/table1.provenance.json").write_text(json.dumps(prov))
    assert main(["provenance", "results/table1.csv"]) == 1
    out = capsys.readouterr().out
    assert "[ok] summary: results/metrics/rrg/rrg_opt/summary.json" in out
    assert "[STALE] summary of seeds [0]: results/metrics/rrg/rrg_opt/summary.json records no metrics_sha256" in out


def test_table2_script_records_and_verifies_its_rendering(workflow_dir, capsys):
    from crrg_clip.evaluate.probe import evaluate_probe

    ids = [f"p{i}" for i in range(8)]
    labels = [0, 1] * 4
    pd.DataFrame({"patientId": ids, "label": labels, "split": "test"}).to_parquet("results/data/rsna.parquet")
    entries = []
    for encoder, shift in (("rclip_radiologist", 0.3), ("random_init", 0.1)):
        folder = Path(f"results/rclip/probe/{encoder}/seed0")
        folder.mkdir(parents=True)
        probs = [min(1.0, 0.4 + shift * y + 0.01 * k) for k, y in enumerate(labels)]
        pd.DataFrame({"patientId": ids, "label": labels, "prob": probs}).to_parquet(folder / "predictions_test.parquet")
        metrics = f"results/metrics/probe/{encoder}/seed0.json"
        write_json(evaluate_probe(encoder=encoder, seed=0, predictions_path=str(folder / "predictions_test.parquet"),
                                  rsna_path="results/data/rsna.parquet", resamples=30, bootstrap_seed=0), metrics)
        summary = f"results/metrics/probe/{encoder}/summary.json"
        write_json(summarize([metrics]), summary)
        entries.append({"system": encoder, "model": encoder, "method": "m", "dataset": "demo (RSNA)",
                        "source": "reproduced", "summary": summary, "metrics": [metrics], "comparison": None})
    # the paired AUC difference is computed by the evaluation rule compare_probe, with its own provenance
    comparison = "results/metrics/probe/rclip_radiologist/vs_random_init.json"
    write_json(compare_systems(system="rclip_radiologist", reference="random_init", reference_label="random_init",
                               metrics_paths=entries[0]["metrics"], reference_paths=entries[1]["metrics"],
                               metrics=["AUC"], command="snakemake " + comparison), comparison)
    entries[0]["comparison"] = comparison
    prov = run_table_script("table2", entries)
    assert [r["row"] for r in prov["rows"]] == [
        "rclip_radiologist / m", "random_init / m", "All-negative / predicts 'no pneumonia' for every image"]
    assert main(["provenance", "results/table2.csv", "--row", "rclip_radiologist",
                 "--metric", "AUC_vs_random_init"]) == 0
    shown = capsys.readouterr().out
    assert "[ok] comparison: " + comparison in shown and "[ok] reference_metrics: " in shown
    assert main(["provenance", "results/table2.csv", "--row", "All-negative", "--metric", "Accuracy"]) == 0
    assert main(["provenance", "results/table2.csv"]) == 0
    with open("results/table2.md", "a") as handle:
        handle.write("edited\n")
    assert main(["provenance", "results/table2.csv"]) == 1
    assert "[CHANGED] rendering: results/table2.md" in capsys.readouterr().out
