"""Compare two results/ trees file by file: byte-identical, or identical once the run records
(timestamps, commit, checkout path, how a job ran) are left out. Used to check that a
refactor changes no number: python benchmarks/diagnostics/compare_results.py A/results B/results"""
import hashlib
import json
import sys
from pathlib import Path

VOLATILE = {"started", "finished", "created", "seconds", "train_seconds", "duration_seconds", "git", "commit",
            "git_commit", "host", "hostname", "wall_seconds", "elapsed", "elapsed_seconds", "date", "time",
            "created_at", "written", "timestamp", "python", "versions", "package_versions", "dirty", "runtime",
            "generated_at", "seconds_per_image", "sentences_per_second", "images_per_second"}
SKIP_DIRS = {"logs", "checkpoints"}


def sha(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def same_tensors(x, y):
    import numpy as np
    from safetensors import safe_open
    with safe_open(str(x), "np") as fx, safe_open(str(y), "np") as fy:
        if fx.metadata() != fy.metadata() or sorted(fx.keys()) != sorted(fy.keys()):
            return False
        return all(np.array_equal(fx.get_tensor(k), fy.get_tensor(k)) for k in fx.keys())


RECORDS = {"command", "code", "code_version", "environment", "ended", "start", "end", "run_json", "settings",
           "inputs", "runtime", "time", "metrics_sha256", "text_source", "sha256_md", "md_sha256"}  # run records: where and how a job ran, not what it computed


def strip(obj):
    if isinstance(obj, dict):
        if str(obj.get("path", "")).endswith("run.json"):
            obj = {k: v for k, v in obj.items() if k not in ("sha256", "size", "bytes")}
        return {k: strip(v) for k, v in obj.items() if k not in VOLATILE | RECORDS}
    if isinstance(obj, list):
        return [strip(v) for v in obj]
    return obj


def same_json(x, y):
    """Equal once run records are left out; a file that is not valid JSON is compared by bytes only."""
    try:
        return strip(json.loads(x.read_text())) == strip(json.loads(y.read_text()))
    except json.JSONDecodeError:
        return False


def files(root):
    return {p.relative_to(root) for p in root.rglob("*") if p.is_file()
            and not (set(p.relative_to(root).parts) & SKIP_DIRS)}


def main(a, b):
    a, b = Path(a), Path(b)
    fa, fb = files(a), files(b)
    only = sorted(fa ^ fb)
    same = normalised = 0
    differ = []
    for rel in sorted(fa & fb):
        if sha(a / rel) == sha(b / rel):
            same += 1
            continue
        if rel.suffix == ".safetensors" and same_tensors(a / rel, b / rel):
            normalised += 1  # safetensors may order its header's metadata keys differently per run
            continue
        if rel.suffix == ".json" and same_json(a / rel, b / rel):
            normalised += 1
            continue
        differ.append(str(rel))
    print(f"{same} byte-identical, {normalised} identical without run-time fields, {len(differ)} differ, "
          f"{len(only)} only in one tree")
    for rel in differ:
        print("DIFFER", rel)
    for rel in only:
        print("ONLY", rel, "(a)" if rel in fa else "(b)")
    return 1 if differ or only else 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:3]))
