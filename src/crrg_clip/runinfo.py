"""What a job records about itself: device, seed, times, code and package versions.

Every training or prediction job writes ``run.json`` next to its outputs; provenance
records read these files, so a number can be traced to the run that made it.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import time
from importlib import metadata
from pathlib import Path
from typing import Any

PACKAGES = (
    "crrg-clip", "torch", "torchvision", "transformers", "tokenizers", "safetensors", "snakemake",
    "pandas", "pyarrow", "numpy", "scikit-learn", "pycocoevalcap", "pydicom", "pillow", "matplotlib",
)


def package_versions(names=PACKAGES) -> dict[str, str | None]:
    versions = {}
    for name in names:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def code_version(repo: Path | str | None = None) -> dict[str, Any]:
    """The git commit of the code and whether the work tree had uncommitted changes."""
    repo = Path(repo) if repo else Path(__file__).resolve().parents[2]
    def git(*args):
        return subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, check=False)
    head = git("rev-parse", "HEAD")
    if head.returncode != 0:
        return {"commit": None, "dirty": None}
    dirty = git("status", "--porcelain", "--untracked-files=no").stdout.strip() != ""
    return {"commit": head.stdout.strip(), "dirty": dirty}


def now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")


def write_run_info(path: Path | str, *, started: str, device: str, seed: int | None = None,
                   settings: dict | None = None, extra: dict | None = None) -> dict:
    """Write run.json: call at the end of a job with the start time taken at its start."""
    info = {
        "started": started,
        "ended": now(),
        "device": device,
        "seed": seed,
        "settings": settings or {},
        "slurm_job_id": os.environ.get("SLURM_JOB_ID"),
        "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES"),
        "host": platform.node(),
        "python": sys.version.split()[0],
        "code": code_version(),
        "packages": package_versions(),
        **(extra or {}),
    }
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(info, indent=2, sort_keys=True, default=str) + "\n")
    return info
