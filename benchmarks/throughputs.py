"""The measured-throughput table, ``benchmarks/results/throughputs.json``.

One entry per named throughput: ``name, value, unit, device, measured_on, source`` and
optionally ``stale`` (why a measurement no longer describes today's code: the code path
changed after it was taken) and ``estimate: true`` (a placeholder, never measured). The GPU
benchmark scripts call ``record`` so that a rerun of ``benchmarks/gpu.sh`` refreshes the
entries it measures (and clears their ``stale`` mark); ``project_paper_run.py`` reads it.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

TABLE = Path(__file__).resolve().parent / "results" / "throughputs.json"
FIELDS = ("name", "value", "unit", "device", "measured_on", "source")


def load(path: Path | str = TABLE) -> dict[str, dict]:
    """name -> entry; every entry has at least FIELDS."""
    path = Path(path)
    entries = json.loads(path.read_text())["throughputs"] if path.exists() else []
    table = {}
    for entry in entries:
        missing = [f for f in FIELDS if f not in entry]
        if missing:
            raise ValueError(f"{path}: entry {entry.get('name')!r} lacks {missing}")
        table[entry["name"]] = entry
    return table


def save(table: dict[str, dict], path: Path | str = TABLE) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    entries = [table[name] for name in sorted(table)]
    path.write_text(json.dumps({"throughputs": entries}, indent=1) + "\n")


def record(name: str, value: float, unit: str, device: str, source: str, *, path: Path | str = TABLE,
           note: str | None = None) -> None:
    """Insert or replace one measured entry (today's date; any ``stale``/``estimate`` mark dropped)."""
    table = load(path)
    entry = {"name": name, "value": round(float(value), 4), "unit": unit, "device": device,
             "measured_on": time.strftime("%Y-%m-%d"), "source": source}
    if note:
        entry["note"] = note
    table[name] = entry
    save(table, path)
