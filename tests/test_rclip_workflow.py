"""R-CLIP rules: what their jobs read (inputs, provenance), checked on the workflow itself."""

import os
import re
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import yaml

from crrg_clip.config import load_config

ROOT = Path(__file__).resolve().parents[1]


DIRECTIVE = re.compile(r"^(wildcard_constraints|rule|checkpoint|localrules|ruleorder|include|envvars)\b")


def python_part(text):
    """A helper .smk without its top-level Snakemake directives (and their indented bodies)."""
    kept, skipping = [], False
    for line in text.splitlines():
        if DIRECTIVE.match(line):
            skipping = True
        elif skipping and (not line.strip() or line[0].isspace()):
            continue
        else:
            skipping = False
            kept.append(line)
    return "\n".join(kept)


def helpers(config, **names):
    """The param functions of helpers/params.smk for ``config`` (with common.smk's section names)."""
    from crrg_clip.systems import Systems

    namespace = {"config": config, "SEEDS": config["seeds"], "RCLIP": config["rclip"], "DATA": config["data"],
                 "EVAL": config["evaluation"], "RRG": config["rrg"], "SYSTEMS": Systems(config), "Path": Path,
                 "WorkflowError": RuntimeError, **names}
    name = "params.smk"
    exec(compile(python_part((ROOT / "workflow/rules/helpers" / name).read_text()), name, "exec"), namespace)
    return namespace


def test_generated_probe_provenance_names_the_rrg_seed_that_wrote_the_texts():
    config = load_config(ROOT / "config" / "config.yaml")
    config["seeds"] = [0, 1]
    config["rclip"]["generated_seed"] = 0  # every CLIP seed trains on RRG seed 0's reports
    h = helpers(config)
    _, optional = h["probe_model_dirs"](SimpleNamespace(encoder="rclip_generated", seed="1"))
    assert optional == [f"results/rrg/rrg_opt/seed0/{part}" for part in ("detector", "selector", "generator")]
    required, _ = h["probe_model_dirs"](SimpleNamespace(encoder="rclip_generated", seed="1"))
    assert "results/rclip/generated/seed1/clip" in required  # the CLIP model is the probe's own seed


def planned_inputs(tmp_path, target):
    """``rule -> [input lines]`` of a dry run of ``target`` with ImageNet weights configured."""
    weights = tmp_path / "resnet18-imagenet.pth"
    weights.write_bytes(b"")
    config = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
    config["rclip"]["image_weights"] = str(weights)
    path = tmp_path / "with-weights.yaml"
    path.write_text(yaml.safe_dump(config))
    result = subprocess.run([sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile"), "--directory",
                             str(tmp_path / "work"), "--configfile", str(path), "-n", "--cores", "1", target],
                            capture_output=True, text=True, timeout=300, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    assert result.returncode == 0, result.stdout + result.stderr
    jobs, rule = {}, None
    for line in (result.stdout + result.stderr).splitlines():
        line = line.strip()
        if line.startswith("rule "):
            rule = line[len("rule "):].rstrip(":")
        elif line.startswith("input:") and rule:
            jobs.setdefault(rule, []).append(line)
    return str(weights), jobs


def test_image_weights_file_is_an_input_of_clip_training_and_the_imagenet_probe(tmp_path):
    """A param would not rerun anything when the weights file changes; an input does."""
    weights, jobs = planned_inputs(tmp_path, "results/rclip/probe/imagenet_init/seed0/predictions_test.parquet")
    assert any(weights in line for line in jobs["train_probe"]), jobs.get("train_probe")
    weights, jobs = planned_inputs(tmp_path, "results/rclip/radiologist/seed0/clip")
    assert any(weights in line for line in jobs["train_clip"]), jobs.get("train_clip")
