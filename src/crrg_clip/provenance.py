"""Provenance: which files, models, runs, config and code produced each reproduced number.

Evaluation records sha256 of its inputs and of every file inside the model folders it
depends on (``file_record`` / ``model_record``) in the metrics JSON; the table rules copy
those chains into ``results/tableN.provenance.json`` after checking that nothing changed
since (and that each seed summary was made from the per-seed metrics files now on disk);
``python -m crrg_clip provenance`` re-verifies every hash later: the table CSV, its
rendering (``.md``), each summary, each metrics file and everything they came from.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
import subprocess
from collections.abc import Iterable
from pathlib import Path

from crrg_clip.runinfo import package_versions

_CHUNK = 1 << 20


class ProvenanceError(RuntimeError):
    """A recorded file changed or disappeared between two steps that must agree."""


def now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def sha256_file(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def file_record(path: str | Path, role: str, **extra) -> dict:
    path = Path(path)
    return {"role": role, "path": str(path), "sha256": sha256_file(path),
            "bytes": path.stat().st_size, **extra}


def read_run_info(folder: str | Path) -> dict:
    """``run.json`` of a model folder (written by crrg_clip.runinfo), or {} when absent/unreadable."""
    path = Path(folder) / "run.json"
    if not path.is_file():
        return {}
    try:
        info = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as error:
        return {"unreadable": f"{path}: {error}"}
    return info if isinstance(info, dict) else {"value": info}


def _pick(info: dict, *keys):
    for key in keys:
        if key in info and info[key] not in (None, ""):
            return info[key]
        for nested in ("run", "environment", "host"):
            if isinstance(info.get(nested), dict) and info[nested].get(key) not in (None, ""):
                return info[nested][key]
    return None


def run_summary(info: dict) -> dict:
    """The run facts a reader asks for, under fixed names, from a run.json of any vintage."""
    return {
        "device": _pick(info, "device", "cuda_device", "gpu"),
        "start": _pick(info, "start", "start_time", "started", "started_at"),
        "end": _pick(info, "end", "end_time", "finished", "finished_at", "ended_at"),
        "slurm_job_id": _pick(info, "slurm_job_id", "SLURM_JOB_ID", "job_id"),
        "seed": _pick(info, "seed"),
        "git_commit": _pick(info, "git_commit", "commit"),
    }


def model_record(folder: str | Path, **extra) -> list[dict]:
    """One record per file inside a model folder (recursively), run facts on each."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ProvenanceError(f"model folder {folder} does not exist")
    info = read_run_info(folder)
    run = {"run_json": info, **run_summary(info)} if info else {}
    files = sorted(p for p in folder.rglob("*") if p.is_file())
    return [file_record(p, "model", model=str(folder), **run, **extra) for p in files]


def existing_records(paths: Iterable[str | Path], role: str) -> list[dict]:
    return [file_record(p, role) for p in paths if Path(p).is_file()]


def code_version(root: str | Path | None = None) -> dict:
    root = Path(root) if root else Path(__file__).resolve().parents[2]

    def git(*args):
        result = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True)
        return result.stdout.strip() if result.returncode == 0 else None

    commit = git("rev-parse", "HEAD")
    status = git("status", "--porcelain", "--untracked-files=no")
    return {"git_commit": commit or "unknown (no commit)",
            "dirty": bool(status) if status is not None else None}


def environment() -> dict:
    """Facts about the process that writes a record."""
    import platform

    import torch

    device = f"cuda ({torch.cuda.get_device_name(0)})" if torch.cuda.is_available() else "cpu"
    return {
        "host": platform.node(),
        "python": platform.python_version(),
        "device": device,
        "slurm_job_id": os.environ.get("SLURM_JOB_ID"),
        "time": now(),
    }


def check_unchanged(records: Iterable[dict], where: str) -> None:
    """Raise when a recorded file changed since it was hashed (stale metrics)."""
    problems = [describe_problem(r) for r in records]
    problems = [p for p in problems if p]
    if problems:
        raise ProvenanceError(f"{where}: " + "; ".join(problems) + " — rerun the evaluation")


def verify_record(record: dict, root: Path) -> tuple[str, str | None]:
    """('ok' | 'changed' | 'missing', current sha256)."""
    path = Path(record["path"])
    path = path if path.is_absolute() else root / path
    if not path.is_file():
        return "missing", None
    current = sha256_file(path)
    return ("ok" if current == record["sha256"] else "changed"), current


def describe_problem(record: dict, root: Path = Path(".")) -> str | None:
    status, current = verify_record(record, root)
    if status == "ok":
        return None
    if status == "missing":
        return f"{record['path']} is missing"
    return f"{record['path']} changed (recorded {record['sha256'][:12]}, now {current[:12]})"


def summary_problems(summary_path: str | Path, metrics_paths: Iterable[str] | None = None,
                     root: Path = Path(".")) -> list[str]:
    """Why a seed summary does not match the per-seed metrics files (empty when it does).

    ``summary.json`` records the sha256 of each metrics file it averaged
    (``metrics_sha256``); a summary whose files were rewritten since holds stale numbers.
    """
    summary_path = Path(summary_path)
    summary_file = summary_path if summary_path.is_absolute() else root / summary_path
    recorded = json.loads(summary_file.read_text()).get("metrics_sha256")
    if recorded is None:
        return [f"{summary_path} records no metrics_sha256 (made by an older summarize); rerun it"]
    expected = list(recorded) if metrics_paths is None else [str(p) for p in metrics_paths]
    problems = []
    if sorted(expected) != sorted(recorded):
        problems.append(f"{summary_path} averaged {sorted(recorded)}, not {sorted(expected)}")
    for path in expected:
        if path not in recorded:
            continue
        state, _ = verify_record({"path": path, "sha256": recorded[path]}, root)
        if state != "ok":
            problems.append(f"{summary_path}: {path} {'is missing' if state == 'missing' else 'changed since the summary was made'}")
    return problems


# ----------------------------------------------------------------------------- tables
def table_rows(entries: Iterable[dict], metrics: Iterable[str], label=lambda e: e["model"]) -> list[dict]:
    """``table_provenance`` rows from a table rule's entries (``summary``, ``metrics``,
    ``system``, ``model``, ``source``): each row's values are its summary's seed means."""
    rows = []
    for entry in entries:
        summary = json.loads(Path(entry["summary"]).read_text())
        values = {m: summary["metrics"][m]["mean"] for m in metrics if m in summary["metrics"]}
        if entry.get("value_aliases"):  # a row showing another metric under a column's name
            values = {shown: summary["metrics"][stored]["mean"] for shown, stored in entry["value_aliases"].items()}
        if entry.get("comparison"):  # paired differences, computed by the evaluation rules
            doc = json.loads(Path(entry["comparison"]).read_text())
            values |= {name: diff["value"] for name, diff in doc["differences"].items()}
        rows.append({"row": label(entry), "model": entry["model"], "system": entry["system"],
                     "source": entry["source"], "summary": entry["summary"], "metrics": list(entry["metrics"]),
                     "comparison": entry.get("comparison"), "values": values})
    return rows


def write_table_provenance(csv_path: str, md_path: str, out_path: str, entries: Iterable[dict],
                           metrics: Iterable[str], config: dict, command: str,
                           label=lambda e: e["model"]) -> dict:
    """What a table rule writes next to its CSV and ``.md``: ``tableN.provenance.json``."""
    rows = table_rows(entries, metrics, label)
    doc = table_provenance(csv_path, rows, config, command, [md_path])
    Path(out_path).write_text(json.dumps(doc, indent=1))
    return doc


def table_provenance(
    table_path: str,
    rows: list[dict],
    config: dict,
    command: str,
    extra_files: Iterable[str] = (),
) -> dict:
    """The provenance document of one table.

    ``rows``: one per reproduced row: ``{"row", "system", "values": {metric: value},
    "summary": path, "metrics": [per-seed metrics JSON paths]}``; the chain of each row
    is read from its metrics files and checked against the files on disk.
    """
    out_rows = []
    for row in rows:
        stale = summary_problems(row["summary"], row["metrics"])
        if stale:
            raise ProvenanceError(f"row {row['row']}: " + "; ".join(stale) + " — rerun the summary")
        chain = [file_record(row["summary"], "summary")]
        seeds, runs = [], []
        for metrics_path in row["metrics"]:
            metrics = json.loads(Path(metrics_path).read_text())
            seeds.append(metrics.get("seed"))
            chain.append(file_record(metrics_path, "metrics", seed=metrics.get("seed"),
                                     command=metrics.get("command")))
            recorded = metrics.get("provenance", {}).get("files", [])
            check_unchanged(recorded, f"{metrics_path} (row {row['row']})")
            for record in recorded:
                chain.append({**record, "seed": metrics.get("seed")})
                if record.get("role") == "model" and record.get("path", "").endswith("run.json"):
                    runs.append({"model": record.get("model"), "seed": metrics.get("seed"),
                                 **{k: record.get(k) for k in
                                    ("device", "start", "end", "slurm_job_id", "git_commit")}})
            runs.append({"evaluation": metrics_path, **metrics.get("provenance", {}).get("environment", {})})
        if row.get("comparison"):
            comparison = json.loads(Path(row["comparison"]).read_text())
            chain.append(file_record(row["comparison"], "comparison", command=comparison.get("command")))
            recorded = comparison.get("provenance", {}).get("files", [])
            check_unchanged(recorded, f"{row['comparison']} (row {row['row']})")
            chain += [record for record in recorded if record["path"] not in {c["path"] for c in chain}]
        out_rows.append({
            "row": row["row"], "model": row.get("model", row["row"]), "system": row["system"], "source": row.get("source", "reproduced"),
            "values": row["values"], "seeds": seeds, "chain": chain, "runs": runs,
        })
    return {
        "table": str(table_path),
        "table_sha256": sha256_file(table_path),
        "created": now(),
        "command": command,
        "code_version": code_version(),
        "packages": package_versions(),
        "environment": environment(),
        "config": config,
        "seeds": config.get("seeds"),
        "extra_files": [file_record(p, "rendering") for p in extra_files if Path(p).is_file()],
        "rows": out_rows,
    }


def provenance_path(table_path: str | Path) -> Path:
    table_path = Path(table_path)
    return table_path.with_name(table_path.stem + ".provenance.json")


def _root_for(table_arg: Path, recorded: str) -> Path:
    """The directory the recorded relative paths are relative to."""
    recorded_path = Path(recorded)
    if recorded_path.is_absolute():
        return Path("/")
    resolved = table_arg.resolve()
    parts = len(recorded_path.parts)
    if resolved.parts[-parts:] == recorded_path.parts:
        return Path(*resolved.parts[:-parts]) if len(resolved.parts) > parts else Path("/")
    return Path.cwd()


def explain(table: str | Path, row: str | None = None, metric: str | None = None,
            out=print) -> int:
    """Print the chain behind a table number (or every row) and verify every sha256.

    Returns 0 when every file matches its recorded hash, 1 otherwise.
    """
    import pandas as pd

    table = Path(table)
    doc = json.loads(provenance_path(table).read_text())
    root = _root_for(table, doc["table"])
    frame = pd.read_csv(table)
    rows = doc["rows"]
    if row is not None:
        rows = [r for r in rows if row in (r["row"], r.get("model"))]
        if not rows:
            known = ", ".join(r["row"] for r in doc["rows"])
            reported = frame.loc[frame["model"] == row, "source"].tolist() if "model" in frame else []
            hint = f" (source {', '.join(reported)}: not produced here)" if reported else ""
            raise SystemExit(f"{table}: no reproduced row {row!r}{hint}; reproduced rows: {known}")
    bad = 0
    out(f"table {table} (recorded {doc['created']}, code {doc['code_version']})")
    out(f"  regenerate: {doc['command']}")
    status = "ok" if sha256_file(table) == doc["table_sha256"] else "CHANGED"
    bad += status != "ok"
    out(f"  [{status}] {table}")
    for record in doc.get("extra_files", []):  # the rendered .md
        state, _ = verify_record(record, root)
        bad += state != "ok"
        out(f"  [{state.upper() if state != 'ok' else 'ok'}] {record['role']}: {record['path']}")
    for entry in rows:
        values = entry["values"]
        metrics = [metric] if metric else list(values)
        for name in metrics:
            if name not in values:
                raise SystemExit(f"{table}: row {entry['row']!r} has no metric {name!r}; "
                                 f"known: {', '.join(values)}")
            mask = (frame["model"] == entry.get("model", entry["row"])) & (frame["source"] == entry["source"])
            if "method" in frame and " / " in entry["row"]:
                mask &= frame["method"] == entry["row"].split(" / ", 1)[1]
            shown = frame.loc[mask, name] if name in frame else frame.loc[[], "model"]
            shown_text = f", table shows {shown.iloc[0]}" if len(shown) else ""
            out(f"{entry['row']} {name} = {values[name]}{shown_text} (seeds {entry['seeds']})")
        for record in entry["chain"]:
            state, current = verify_record(record, root)
            bad += state != "ok"
            seed = f" seed {record['seed']}" if record.get("seed") is not None else ""
            label = {"ok": "ok", "missing": "MISSING", "changed": "CHANGED"}[state]
            out(f"  [{label}] {record['role']}{seed}: {record['path']} sha256 {record['sha256'][:16]}")
            if state == "changed":
                out(f"      now {current[:16]}")
            if record.get("command"):
                out(f"      regenerate: {record['command']}")
        summary = next((r for r in entry["chain"] if r["role"] == "summary"), None)
        if summary is not None and verify_record(summary, root)[0] == "ok":
            # the summary on disk still averages exactly the metrics files of this row
            stale = summary_problems(summary["path"], [r["path"] for r in entry["chain"] if r["role"] == "metrics"],
                                     root)
            bad += bool(stale)
            out(f"  [{'STALE' if stale else 'ok'}] summary of seeds {entry['seeds']}"
                + (": " + "; ".join(stale) if stale else ": made from these metrics files"))
        for run in entry["runs"]:
            facts = ", ".join(f"{k}={v}" for k, v in run.items() if v not in (None, "", {}))
            out(f"  run: {facts}")
    out("all files match their recorded sha256" if not bad
        else f"{bad} file(s) changed or missing since the table was made")
    return 0 if not bad else 1
