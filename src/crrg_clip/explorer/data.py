"""Collect what the explorer shows from the run's files, as one JSON-able document.

Per (system, seed) run: its reports (``dicom_id, report[, reference]``), its region
predictions where it has them (RRG variants: ``predictions_test.parquet``, boxes in cache
pixels) and the per-report metrics of its metrics JSON (every numeric list of
``per_report`` aligned with ``per_report.dicom_id``: ROUGEL, CIDER, ... and whatever is
added there later). CE labels (CheXpert, ``crrg_clip.evaluate.chexpert_labeler``) of every
generated and reference report are computed here, once per distinct text.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from crrg_clip.regions import REGIONS


@dataclass(frozen=True)
class Run:
    """One system at one seed, and its files (``predictions``/``metrics`` may be None)."""

    system: str
    seed: int
    reports: str
    predictions: str | None = None
    metrics: str | None = None

    @property
    def label(self) -> str:
        return f"{self.system} seed{self.seed}"


def _number(value) -> float | None:
    try:
        value = float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(value) or math.isinf(value) else value


def _text(value) -> str:
    return "" if value is None or (isinstance(value, float) and math.isnan(value)) else str(value)


def read_reports(path: str) -> pd.DataFrame:
    frame = pd.read_csv(path) if str(path).endswith(".csv") else pd.read_parquet(path)
    missing = {"dicom_id", "report"} - set(frame.columns)
    if missing:
        raise ValueError(f"{path}: missing column(s) {sorted(missing)}")
    return frame.assign(dicom_id=frame["dicom_id"].astype(str))


def per_report_metrics(path: str | None) -> dict[str, dict[str, float | None]]:
    """dicom_id -> {metric: value} from the ``per_report`` block (numeric lists only)."""
    if not path:
        return {}
    block = json.loads(Path(path).read_text()).get("per_report") or {}
    ids = [str(d) for d in block.get("dicom_id", [])]
    out: dict[str, dict[str, float | None]] = {d: {} for d in ids}
    for name, values in block.items():
        if name == "dicom_id" or not isinstance(values, list) or len(values) != len(ids):
            continue
        numbers = [_number(v) for v in values]
        if all(n is None for n in numbers) and any(v is not None for v in values):
            continue  # not a numeric list (e.g. labels as strings)
        for d, n in zip(ids, numbers):
            out[d][name] = n
    return out


def region_rows(predictions: pd.DataFrame) -> dict[str, list[list]]:
    """dicom_id -> [region_index, detected, selected, score, x1, y1, x2, y2, generated, reference]
    for the regions worth showing (detected, selected or described in the reference)."""
    frame = predictions.assign(dicom_id=predictions["dicom_id"].astype(str)).sort_values(["dicom_id", "region_index"])
    reference = frame["reference_sentence"].map(_text) if "reference_sentence" in frame else ""
    frame = frame.assign(reference_sentence=reference, generated_sentence=frame["generated_sentence"].map(_text))
    keep = frame["detected"].astype(bool) | frame["selected"].astype(bool) | (frame["reference_sentence"] != "")
    out: dict[str, list[list]] = {}
    for r in frame[keep].itertuples(index=False):
        box = [_number(v) for v in (r.x1, r.y1, r.x2, r.y2)]
        out.setdefault(r.dicom_id, []).append([
            int(r.region_index), bool(r.detected), bool(r.selected), _number(r.selection_score),
            *[None if v is None else round(v, 1) for v in box], r.generated_sentence, r.reference_sentence])
    return out


def ce_labels(texts: Sequence[str]) -> tuple[list[str], dict[str, list]] | tuple[None, str]:
    """(observations, text -> [value per observation]) or (None, why not)."""
    try:
        from crrg_clip.evaluate import chexpert_labeler
    except ImportError as error:
        return None, f"CE labels unavailable: {error}"
    distinct = sorted({t for t in texts if t.strip()})
    observations = list(chexpert_labeler.CHEXPERT_OBSERVATIONS)
    if not distinct:
        return observations, {}
    frame = chexpert_labeler.label_reports(distinct)
    return observations, {t: [_number(v) for v in row] for t, row in zip(distinct, frame[observations].to_numpy())}


def collect(runs: Sequence[Run], references: dict[str, str] | None = None) -> dict:
    """The explorer document: systems, entries (one per run and test image), metrics, CE labels."""
    references = references or {}
    systems, entries, metric_names = [], [], []
    for k, run in enumerate(runs):
        reports = read_reports(run.reports)
        metrics = per_report_metrics(run.metrics)
        regions = region_rows(pd.read_parquet(run.predictions)) if run.predictions else {}
        systems.append({"label": run.label, "system": run.system, "seed": run.seed, "regions": bool(run.predictions)})
        has_ref = "reference" in reports
        for row in reports.itertuples(index=False):
            d = row.dicom_id
            values = metrics.get(d, {})
            metric_names += [m for m in values if m not in metric_names]
            entries.append({"s": k, "id": d, "gen": _text(row.report),
                            "ref": _text(row.reference) if has_ref else references.get(d, ""),
                            "m": values, "r": regions.get(d, [])})
    observations, labels = ce_labels([e["gen"] for e in entries] + [e["ref"] for e in entries])
    note = None
    if observations is None:
        note, observations, labels = labels, [], {}
    for e in entries:
        e["cg"] = labels.get(e["gen"]) if e["gen"].strip() else None
        e["cr"] = labels.get(e["ref"]) if e["ref"].strip() else None
    return {"systems": systems, "entries": entries, "metrics": metric_names, "observations": observations,
            "regions": list(REGIONS), "note": note}


def image_ids(document: dict) -> list[str]:
    return sorted({e["id"] for e in document["entries"]})


def cache_images(cache_images_path: str, cache_index_path: str, ids: Sequence[str]) -> dict[str, np.ndarray]:
    """dicom_id -> uint8 (S, S) from the image cache, for the ids it holds."""
    index = pd.read_parquet(cache_index_path, columns=["dicom_id", "row"])
    rows = dict(zip(index["dicom_id"].astype(str), index["row"].astype(int)))
    images = np.load(cache_images_path, mmap_mode="r")  # (N, S, S)
    return {d: np.asarray(images[rows[d]]) for d in ids if d in rows}
