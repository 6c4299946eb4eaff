"""profiles/slurm against a real SLURM: `make test-slurm` (or start .ci/slurm/start.sh,
export SLURM_CONF, then `pytest -m slurm tests/slurm`).

What is proven, on the single-node test cluster of .ci/slurm/:
- jobs go through sbatch (sacct lists them, by the plugin's job name and rule comment);
- the GPU rule's job is allocated a GPU (sacct AllocTRES has gres/gpu), both with the
  profile's default `--gpus` request and with CRRG_SLURM_GPU_REQUEST=gres, and the job
  sees CUDA_VISIBLE_DEVICES; the CPU rule's job gets none;
- the outputs equal those of a local run (sha256 of every target).

The unmarked test at the end checks, without SLURM, that the profile's GPU list matches
the rules that declare `resources: gpu=1`.
"""

from __future__ import annotations

import copy
import hashlib
import os
import re
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
PROFILE = REPO / "profiles" / "slurm"
TINY_SNAKEFILE = Path(__file__).resolve().parent / "Snakefile"
SNAKEMAKE = [sys.executable, "-m", "snakemake"]

# Targets of the tiny test workflow (tests/slurm/Snakefile): one CPU and one GPU rule.
TINY_TARGETS = ["out/cpu/digest.txt", "out/gpu/digest.txt"]
TINY_CPU_RULE, TINY_GPU_RULE = "tiny_cpu", "tiny_gpu"
# The tiny GPU rule gets this profile rule's set-resources block (GPU request included),
# shrunk to the test node, so the profile's own GPU switch is what gets tested.
GPU_TEMPLATE_RULE = "train_detector"

# Targets of the real workflow run through SLURM and compared with a local run. Grow this
# list as stages land (a GPU target such as a trained model belongs here once it is cheap
# on the demo config). Each entry: (target file, rule that must exist to run it).
WORKFLOW_TARGETS = [("results/demo_data/manifest.json", "demo_data")]

# Hard limits: without working accounting the plugin can wait forever.
RUN_TIMEOUT_S = int(os.environ.get("CRRG_SLURM_TEST_TIMEOUT", "900"))
TEST_ACCOUNT = os.environ.get("CRRG_SLURM_ACCOUNT", "crrg")
TEST_PARTITION = os.environ.get("CRRG_SLURM_PARTITION", "debug")
DEFAULT_SLURM_CONF = "/tmp/crrg-slurm/etc/slurm.conf"  # .ci/slurm/start.sh's default


def _slurm_env() -> dict[str, str]:
    env = dict(os.environ)
    if "SLURM_CONF" not in env and Path(DEFAULT_SLURM_CONF).exists():
        env["SLURM_CONF"] = DEFAULT_SLURM_CONF
    env["CRRG_SLURM_ACCOUNT"] = TEST_ACCOUNT
    env["CRRG_SLURM_PARTITION"] = TEST_PARTITION
    env.pop("CRRG_SLURM_GPU_REQUEST", None)
    env["HF_HUB_OFFLINE"] = "1"
    return env


def _run(cmd, *, env, cwd=None, timeout=60, check=True) -> subprocess.CompletedProcess:
    proc = subprocess.run(
        cmd, env=env, cwd=cwd, text=True, capture_output=True, timeout=timeout
    )
    if check and proc.returncode != 0:
        raise AssertionError(
            f"{' '.join(map(str, cmd))} exited {proc.returncode}\n"
            f"--- stdout ---\n{proc.stdout[-6000:]}\n--- stderr ---\n{proc.stderr[-6000:]}"
        )
    return proc


def _cluster_problem(env) -> str | None:
    """Why the test cluster cannot be used, or None when it answers."""
    for tool in ("sbatch", "sacct", "sinfo"):
        if shutil.which(tool) is None:
            return f"{tool} not on PATH: run .ci/slurm/start.sh (make test-slurm)"
    try:
        states = _run(["sinfo", "-h", "-o", "%T"], env=env, timeout=20).stdout.split()
        _run(["sacct", "-n", "-X", "-S", "now-1hour"], env=env, timeout=20)
    except (AssertionError, subprocess.TimeoutExpired) as err:
        return f"SLURM does not answer ({err}); run .ci/slurm/start.sh"
    if not any(s in ("idle", "mixed", "allocated") for s in states):
        return f"no usable node (sinfo states: {states})"
    return None


@pytest.fixture(scope="module")
def slurm_env():
    env = _slurm_env()
    problem = _cluster_problem(env)
    if problem:
        pytest.fail(problem)  # marked `slurm`: asked for explicitly, so a missing cluster fails
    return env


def _node_capacity(env) -> tuple[int, int]:
    """CPUs and memory (MB) of the smallest node in the test partition."""
    out = _run(["sinfo", "-h", "-p", TEST_PARTITION, "-o", "%c %m"], env=env).stdout
    pairs = [tuple(int(re.sub(r"\D", "", x)) for x in line.split()) for line in out.splitlines()]
    return min(p[0] for p in pairs), min(p[1] for p in pairs)


def _sha256_tree(path: Path) -> dict[str, str]:
    """sha256 of a file, or of every file under a directory (by relative path)."""
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    assert files, f"{path} is missing or empty"
    return {
        str(p.relative_to(path.parent)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in files
    }


def _sacct_jobs(env, jobname_prefix: str) -> list[dict[str, str]]:
    """Allocations (no steps) whose job name starts with this run's prefix."""
    fields = ["JobID", "JobName%80", "Comment%120", "State", "AllocTRES%120", "Account"]
    out = _run(
        ["sacct", "-n", "-X", "-P", "-S", "now-2hours", "-o", ",".join(fields)], env=env
    ).stdout
    names = [f.split("%")[0] for f in fields]
    rows = [dict(zip(names, line.split("|"))) for line in out.splitlines() if line]
    return [r for r in rows if r["JobName"].startswith(jobname_prefix)]


def _write_test_profile(dest: Path, node_cpus: int, node_mem_mb: int) -> Path:
    """profiles/slurm/config.yaml plus a block for the tiny GPU rule.

    That block is the profile's own GPU_TEMPLATE_RULE block (runtime, GPU request) with
    cpus_per_task and mem_mb shrunk to fit the test node; nothing else is changed.
    """
    profile = yaml.safe_load((PROFILE / "config.yaml").read_text())
    block = copy.deepcopy(profile["set-resources"][GPU_TEMPLATE_RULE])
    block["cpus_per_task"] = min(int(block.get("cpus_per_task", 1)), node_cpus)
    block["mem_mb"] = min(int(block.get("mem_mb", 1000)), node_mem_mb // 2)
    profile["set-resources"][TINY_GPU_RULE] = block
    dest.mkdir(parents=True, exist_ok=True)
    (dest / "config.yaml").write_text(yaml.safe_dump(profile, sort_keys=False))
    return dest


def _snakemake_slurm(workdir: Path, snakefile: Path, profile: Path, targets, env, prefix):
    cmd = [
        *SNAKEMAKE,
        "--snakefile", str(snakefile),
        "--directory", str(workdir),
        "--profile", str(profile),
        "--slurm-jobname-prefix", prefix,
        "--slurm-keep-successful-logs",
        "--slurm-init-seconds-before-status-checks", "2",  # not 40 s: a quicker test
        "--verbose",  # logs each sbatch call
        *targets,
    ]  # fmt: skip
    try:
        return _run(cmd, env=env, cwd=workdir, timeout=RUN_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        subprocess.run(["scancel", "--name", prefix], env=env, check=False)
        pytest.fail(f"snakemake on SLURM ran past {RUN_TIMEOUT_S} s (accounting hung?)")


def _snakemake_local(workdir: Path, snakefile: Path, targets, env):
    cmd = [
        *SNAKEMAKE,
        "--snakefile", str(snakefile),
        "--directory", str(workdir),
        "--profile", str(REPO / "profiles" / "local"),
        "--cores", "2",
        *targets,
    ]  # fmt: skip
    return _run(cmd, env=env, cwd=workdir, timeout=RUN_TIMEOUT_S)


def _sbatch_calls(log: str) -> dict[str, str]:
    """Rule name -> the sbatch command line the plugin logged for it (--verbose)."""
    calls = {}
    for line in log.splitlines():
        match = re.search(r"sbatch call: (sbatch .*)$", line)
        if match:
            rule = re.search(r"--comment '?rule_(\w+?)(?:_wildcards_\S*)?'? ", match[1])
            calls[rule[1] if rule else "?"] = match[1]
    return calls


def _prefix() -> str:
    return "crrgtest" + uuid.uuid4().hex[:8]


@pytest.mark.slurm
@pytest.mark.parametrize("gpu_request", ["gpu", "gres"])
def test_tiny_workflow_cpu_and_gpu_jobs_through_sbatch(slurm_env, tmp_path, gpu_request):
    env = dict(slurm_env)
    if gpu_request == "gres":
        env["CRRG_SLURM_GPU_REQUEST"] = "gres"
    cpus, mem_mb = _node_capacity(env)
    profile = _write_test_profile(tmp_path / "profile", cpus, mem_mb)
    prefix = _prefix()

    on_slurm = tmp_path / "slurm"
    local = tmp_path / "local"
    on_slurm.mkdir()
    local.mkdir()
    started = time.monotonic()
    run = _snakemake_slurm(on_slurm, TINY_SNAKEFILE, profile, TINY_TARGETS, env, prefix)
    print(f"SLURM run ({gpu_request}): {time.monotonic() - started:.1f} s")
    _snakemake_local(local, TINY_SNAKEFILE, TINY_TARGETS, _slurm_env())

    # The sbatch line of each rule carries exactly the request this mode asks for.
    calls = _sbatch_calls(run.stdout + run.stderr)
    if gpu_request == "gres":
        gpu_flag, other_flag = "--gres=gpu:1", "--gpus"
    else:
        gpu_flag, other_flag = "--gpus=1", "--gres"
    assert gpu_flag in calls[TINY_GPU_RULE] and other_flag not in calls[TINY_GPU_RULE], calls
    assert "--gpus" not in calls[TINY_CPU_RULE] and "--gres" not in calls[TINY_CPU_RULE], calls

    jobs = _sacct_jobs(env, prefix)
    by_rule = {r["Comment"]: r for r in jobs}
    assert f"rule_{TINY_CPU_RULE}" in by_rule, f"no sbatch job for {TINY_CPU_RULE}: {jobs}"
    assert f"rule_{TINY_GPU_RULE}" in by_rule, f"no sbatch job for {TINY_GPU_RULE}: {jobs}"
    for row in jobs:
        assert row["State"] == "COMPLETED", row
        assert row["Account"] == TEST_ACCOUNT, row
    assert "gres/gpu=1" in by_rule[f"rule_{TINY_GPU_RULE}"]["AllocTRES"], by_rule
    assert "gres/gpu" not in by_rule[f"rule_{TINY_CPU_RULE}"]["AllocTRES"], by_rule

    # The GPU job saw the GPU it was given, inside a SLURM allocation.
    seen = dict(
        line.split("=", 1) for line in (on_slurm / "out/gpu/env.txt").read_text().split()
    )
    assert seen["CUDA_VISIBLE_DEVICES"] not in ("", "unset"), seen
    gpu_job_id = by_rule[f"rule_{TINY_GPU_RULE}"]["JobID"]
    assert seen["SLURM_JOB_ID"] == gpu_job_id, (seen, gpu_job_id)

    for target in TINY_TARGETS:
        assert _sha256_tree(on_slurm / target) == _sha256_tree(local / target), target


def _copy_workflow(dest: Path) -> Path:
    """The workflow's source (no results/, .snakemake/, .venv/, .git/) in a fresh folder."""
    ignore = shutil.ignore_patterns(
        ".git", ".venv", "results", ".snakemake", "logs", "__pycache__", ".pytest_cache",
        "*.egg-info", "benchmarks", "shared",
    )  # fmt: skip
    shutil.copytree(REPO, dest, ignore=ignore, symlinks=True)
    return dest


def _defined_rules() -> set[str]:
    text = (REPO / "Snakefile").read_text()
    for smk in (REPO / "workflow" / "rules").glob("*.smk"):
        text += smk.read_text()
    return set(re.findall(r"^rule\s+(\w+)\s*:", text, flags=re.M))


@pytest.mark.slurm
@pytest.mark.parametrize(("target", "rule"), WORKFLOW_TARGETS)
def test_workflow_target_on_slurm_equals_local(slurm_env, tmp_path, target, rule):
    if rule not in _defined_rules():
        pytest.skip(f"rule {rule} is not in the workflow yet")
    on_slurm = _copy_workflow(tmp_path / "slurm")
    local = _copy_workflow(tmp_path / "local")
    prefix = _prefix()
    env = dict(slurm_env)
    # The real profile directory, untouched: account and partition come from the
    # CRRG_SLURM_* variables it reads.
    started = time.monotonic()
    _snakemake_slurm(on_slurm, on_slurm / "Snakefile", PROFILE, [target], env, prefix)
    print(f"SLURM run of {target}: {time.monotonic() - started:.1f} s")
    _snakemake_local(local, local / "Snakefile", [target], _slurm_env())

    jobs = _sacct_jobs(env, prefix)
    assert any(r["Comment"] == f"rule_{rule}" for r in jobs), f"{rule} not run by sbatch: {jobs}"
    assert all(r["State"] == "COMPLETED" for r in jobs), jobs
    assert _sha256_tree(on_slurm / target) == _sha256_tree(local / target)


# --- no SLURM needed --------------------------------------------------------------------


def _gpu_rules_of_workflow() -> set[str] | None:
    """Rules declaring a `gpu` resource, parsed by Snakemake; None if it does not load."""
    try:
        from snakemake.api import SnakemakeApi
        from snakemake.settings.types import ConfigSettings, ResourceSettings
        from snakemake.settings.types import StorageSettings, WorkflowSettings
    except ImportError:
        return None
    cwd = os.getcwd()
    try:
        os.chdir(REPO)
        with SnakemakeApi() as api:
            wf_api = api.workflow(
                resource_settings=ResourceSettings(),
                config_settings=ConfigSettings(),
                storage_settings=StorageSettings(),
                workflow_settings=WorkflowSettings(),
                snakefile=REPO / "Snakefile",
                workdir=REPO,
            )
            rules = wf_api._workflow.rules  # noqa: SLF001 (no public listing of resources)
            return {r.name for r in rules if "gpu" in r.resources}
    except Exception:  # noqa: BLE001 - a workflow mid-construction: reported as a skip
        return None
    finally:
        os.chdir(cwd)


def test_profile_gpu_list_matches_workflow_gpu_rules():
    profile = yaml.safe_load((PROFILE / "config.yaml").read_text())
    blocks = profile["set-resources"]
    template = blocks[GPU_TEMPLATE_RULE]
    listed = {name for name, block in blocks.items() if "gres" in block and "gpu" in block}
    for name in listed:  # one GPU request for all, from the YAML anchor
        assert (blocks[name]["gpu"], blocks[name]["gres"]) == (template["gpu"], template["gres"])
    declared = _gpu_rules_of_workflow()
    if declared is None:
        pytest.skip("the workflow does not load yet; only the profile itself was checked")
    missing = declared - listed
    assert not missing, f"GPU rules without a GPU block in {PROFILE}/config.yaml: {missing}"
    existing_cpu_rules = (_defined_rules() - declared) & listed
    assert not existing_cpu_rules, f"CPU-only rules given a GPU: {existing_cpu_rules}"
