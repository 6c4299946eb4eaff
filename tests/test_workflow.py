"""The workflow as users meet it: lint-clean, plans the default and the paper's DAG."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
SNAKEMAKE = [sys.executable, "-m", "snakemake"]


def run_snakemake(*args, cwd=ROOT, timeout=300):
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    return subprocess.run([*SNAKEMAKE, *args], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout, env=env)


def test_lint_is_clean():
    result = run_snakemake("--lint")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Lints for rule" not in result.stdout + result.stderr


def test_default_target_plans_the_whole_workflow(tmp_path):
    # an empty working directory, so existing results/ cannot make the plan empty
    result = run_snakemake("-s", str(ROOT / "Snakefile"), "--directory", str(tmp_path), "-n", "--cores", "2",
                           "--quiet", "rules")
    assert result.returncode == 0, result.stderr
    planned = result.stdout + result.stderr
    for rule in ("demo_data", "ingest_reports", "parse_scene_graphs", "subsample", "cache_mimic",
                 "train_detector", "train_generator", "back_translate", "train_clip", "train_probe",
                 "table1", "table2", "figure4"):
        assert rule in planned, f"{rule} missing from the default plan"


def test_wrong_config_key_stops_before_any_job(tmp_path):
    config = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
    config["rrg"]["bakbone"] = "resnet50"
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(config))
    result = run_snakemake("-n", "--cores", "1", "--configfile", str(path))
    assert result.returncode != 0
    assert "rrg.bakbone" in result.stdout + result.stderr


def test_missing_data_root_is_named(tmp_path):
    config = yaml.safe_load((ROOT / "config" / "paper.yaml").read_text())
    config["data"]["imagenome"] = str(tmp_path / "nowhere")
    path = tmp_path / "paper-missing.yaml"
    path.write_text(yaml.safe_dump(config))
    result = run_snakemake("-n", "--cores", "1", "--configfile", str(path))
    assert result.returncode != 0
    assert str(tmp_path / "nowhere") in result.stdout + result.stderr
