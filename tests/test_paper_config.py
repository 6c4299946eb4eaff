"""config/paper.yaml is real: on data in the real layouts it plans the full DAG and its
ingest part runs (the synthetic writer's output stands in for the downloads)."""

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from crrg_clip.data.synthetic.writer import write_synthetic_dataset

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def paper_on_demo_layout(tmp_path_factory):
    base = tmp_path_factory.mktemp("paper")
    roots = {key: base / "downloads" / key for key in ("mimic_cxr_reports", "mimic_cxr_jpg", "imagenome", "rsna")}
    manifest = write_synthetic_dataset(roots["mimic_cxr_reports"], roots["mimic_cxr_jpg"], roots["imagenome"],
                                       roots["rsna"], base / "downloads" / "manifest.json", seed=3,
                                       n_patients=30, rsna_images=40, rsna_size=128)
    config = yaml.safe_load((ROOT / "config" / "paper.yaml").read_text())
    config["data"].update({key: str(path) for key, path in roots.items()})
    # the paper's 5% threshold is for the real data; a 30-patient set with planted faults
    # loses more than that by design
    config["qc"]["max_excluded_fraction"] = 0.5
    config["qc"]["scene_graph_shards"] = 2
    path = base / "paper-on-demo.yaml"
    path.write_text(yaml.safe_dump(config))
    # the ImageNet weights file is a declared input (rclip.image_weights): a placeholder stands in
    weights = base / "work" / config["rclip"]["image_weights"]
    weights.parent.mkdir(parents=True, exist_ok=True)
    weights.write_bytes(b"")
    return base, path, manifest


def snakemake(workdir, configfile, *args, timeout=600):
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    return subprocess.run([sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile"), "--directory",
                           str(workdir), "--configfile", str(configfile), *args],
                          capture_output=True, text=True, timeout=timeout, env=env)


def test_paper_config_plans_the_full_dag(paper_on_demo_layout):
    base, configfile, _ = paper_on_demo_layout
    result = snakemake(base / "work", configfile, "-n", "--cores", "2", "--quiet", "rules")
    assert result.returncode == 0, result.stdout + result.stderr
    planned = result.stdout + result.stderr
    assert "demo_data" not in planned  # real roots: nothing synthetic is written
    for rule in ("train_detector", "train_generator", "generate_reports_for", "back_translate",
                 "train_clip", "train_probe", "table1", "table2"):
        assert rule in planned, f"{rule} missing from the paper.yaml plan"


@pytest.mark.slow
def test_paper_config_ingest_runs_for_real(paper_on_demo_layout):
    base, configfile, manifest = paper_on_demo_layout
    work = base / "work"
    result = snakemake(work, configfile, "--cores", "2", "results/qc/summary.tsv", "results/data/images.parquet",
                       "results/data/rsna.parquet")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    images = pd.read_parquet(work / "results/data/images.parquet")
    expected = manifest["expected"]
    kept_rsna = pd.read_parquet(work / "results/data/rsna.parquet")
    assert len(kept_rsna) == expected["rsna_readable"]
    # train images without FINDINGS are kept (RGRG); valid/test ones are excluded
    counts = {"train": expected["imagenome_usable"]["train"],
              **{s: expected["imagenome_usable_with_findings_section"][s] for s in ("valid", "test")}}
    assert images["split"].value_counts().to_dict() == {s: n for s, n in counts.items() if n}
    exclusions = pd.read_csv(work / "results/qc/exclusions.tsv", sep="\t")
    assert {"dataset", "item_id", "reason"} <= set(exclusions.columns)
    assert len(exclusions) > 0  # the planted faults are accounted for, not dropped
