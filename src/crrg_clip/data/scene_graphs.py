"""Chest ImaGenome scene graphs -> one row per (image, region) for the 29 regions.

Boxes come from the ``original_*`` keys (original-image pixels), clipped to the image
size from the MIMIC-CXR-JPG metadata (``Columns`` x ``Rows``). Boxes that are empty or
inverted after clipping are kept as NaN with ``box_valid = False`` and recorded as an
exclusion (``imagenome-boxes``, item ``{dicom_id}_{region}``). A file that cannot be read
is an exclusion of ``imagenome-scene-graphs``.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd

from ..regions import REGIONS
from .exclusions import ExclusionLog

FILES_DATASET = "imagenome-scene-graphs"
BOXES_DATASET = "imagenome-boxes"
SUFFIX = "_SceneGraph.json"
ABNORMAL = "nlp|yes|abnormal"
COLUMNS = [
    "dicom_id", "region_index", "region", "x1", "y1", "x2", "y2",
    "box_valid", "phrase", "has_sentence", "is_abnormal",
]
_REGION_SET = set(REGIONS)
_SPACE_BEFORE_PUNCT = re.compile(r"\s+([,.;:!?])")


def clean_phrase(text: str) -> str:
    """Newlines and runs of whitespace -> one space, no space before punctuation.

    Only whitespace is touched: digits, decimal points and units stay ("20 mm", "1.5 cm").
    """
    return _SPACE_BEFORE_PUNCT.sub(r"\1", " ".join(str(text).split()))


def scene_graph_dir(root: Path | str) -> Path:
    """``silver_dataset/scene_graph/`` or the doubly nested ``scene_graph/scene_graph/``."""
    base = Path(root) / "silver_dataset" / "scene_graph"
    nested = base / "scene_graph"
    if nested.is_dir() and any(nested.glob(f"*{SUFFIX}")):
        return nested
    if base.is_dir():
        return base
    raise FileNotFoundError(f"{root}: no silver_dataset/scene_graph/ folder")


def list_scene_graph_files(root: Path | str) -> list[Path]:
    """All scene-graph files, sorted by name, from either nesting (both, if both hold files)."""
    base = Path(root) / "silver_dataset" / "scene_graph"
    if not base.is_dir():
        raise FileNotFoundError(f"{root}: no silver_dataset/scene_graph/ folder")
    files = {p.name: p for p in base.glob(f"*{SUFFIX}")}
    for p in (base / "scene_graph").glob(f"*{SUFFIX}"):
        files.setdefault(p.name, p)
    return [files[name] for name in sorted(files)]


def shard(files: Sequence[Path], index: int, n_shards: int) -> list[Path]:
    """Every ``n_shards``-th file of the sorted listing, starting at ``index``."""
    if not 0 <= index < n_shards:
        raise ValueError(f"shard index {index} outside 0..{n_shards - 1}")
    return list(files[index::n_shards])


def _clip_box(obj: Mapping, size: tuple[int, int] | None) -> tuple[list[float] | None, str]:
    """``(box, problem)``: the clipped original-pixel box, or None and why it is invalid."""
    try:
        x1, y1, x2, y2 = (float(obj[k]) for k in ("original_x1", "original_y1", "original_x2", "original_y2"))
    except (KeyError, TypeError, ValueError):
        return None, "box_missing_coordinates"
    if not all(math.isfinite(v) for v in (x1, y1, x2, y2)):
        return None, "box_missing_coordinates"
    if x2 < x1 or y2 < y1:
        return None, "box_inverted"
    x1, y1 = max(x1, 0.0), max(y1, 0.0)
    if size is not None:
        width, height = size
        x2, y2 = min(x2, float(width)), min(y2, float(height))
    if x2 <= x1 or y2 <= y1:
        return None, "box_zero_area"
    return [x1, y1, x2, y2], ""


def parse_scene_graph(
    data: Mapping, size: tuple[int, int] | None, log: ExclusionLog, dicom_id: str | None = None
) -> list[tuple]:
    """Rows (in COLUMNS order) for the 29 regions of one parsed scene graph.

    ``size`` is ``(width, height)`` of the original image, or None when unknown (then only
    negative coordinates are clipped).
    """
    dicom_id = str(data.get("image_id") or dicom_id)
    boxes: dict[str, list[float] | None] = {}
    for obj in data.get("objects") or []:
        name = obj.get("bbox_name")
        if name not in _REGION_SET or name in boxes:
            continue
        box, problem = _clip_box(obj, size)
        boxes[name] = box
        if box is None:
            log.add(BOXES_DATASET, f"{dicom_id}_{name}", problem)

    phrases: dict[str, list[str]] = {}
    abnormal: dict[str, bool] = {}
    for entry in data.get("attributes") or []:
        name = entry.get("bbox_name")
        if name not in _REGION_SET:
            continue
        for phrase in entry.get("phrases") or []:
            cleaned = clean_phrase(phrase)
            if cleaned and cleaned not in phrases.setdefault(name, []):
                phrases[name].append(cleaned)
        labels = entry.get("attributes") or []
        flat = [a for group in labels for a in (group if isinstance(group, list) else [group])]
        abnormal[name] = abnormal.get(name, False) or ABNORMAL in flat

    rows = []
    for index, region in enumerate(REGIONS):
        box = boxes.get(region)
        phrase = " ".join(phrases.get(region, []))
        x1, y1, x2, y2 = box if box is not None else (np.nan,) * 4
        rows.append((dicom_id, index, region, x1, y1, x2, y2, box is not None, phrase, phrase != "",
                     abnormal.get(region, False)))
    return rows


def _parse_file(args: tuple[str, tuple[int, int] | None]) -> tuple[list[tuple], list[tuple[str, str, str]]]:
    path, size = args
    log = ExclusionLog()
    name = Path(path).name
    file_id = name[: -len(SUFFIX)] if name.endswith(SUFFIX) else name
    try:
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
        if not isinstance(data, dict):
            raise ValueError("top level is not an object")
    except (OSError, UnicodeDecodeError, ValueError):
        log.add(FILES_DATASET, file_id, "unreadable_scene_graph")
        return [], log.rows
    if str(data.get("image_id", file_id)) != file_id:
        log.add(FILES_DATASET, file_id, "scene_graph_id_mismatch")
        return [], log.rows
    return parse_scene_graph(data, size, log, dicom_id=file_id), log.rows


def empty_regions() -> pd.DataFrame:
    return regions_frame([])


def regions_frame(rows: list[tuple]) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=COLUMNS)
    return frame.astype({
        "dicom_id": str, "region_index": "int64", "region": str, "x1": "float64", "y1": "float64",
        "x2": "float64", "y2": "float64", "box_valid": bool, "phrase": str, "has_sentence": bool,
        "is_abnormal": bool,
    })


def _parse_chunk(jobs: list[tuple[str, tuple[int, int] | None]]) -> tuple[pd.DataFrame, list[tuple[str, str, str]]]:
    """Parse a chunk of files in a worker; a columnar frame pickles far cheaper than row tuples."""
    rows: list[tuple] = []
    log_rows: list[tuple[str, str, str]] = []
    for job in jobs:
        file_rows, file_log = _parse_file(job)
        rows.extend(file_rows)
        log_rows.extend(file_log)
    return regions_frame(rows), log_rows


def parse_scene_graph_files(
    paths: Sequence[Path | str],
    sizes: Mapping[str, tuple[int, int]],
    workers: int = 1,
    chunksize: int = 64,
) -> tuple[pd.DataFrame, ExclusionLog]:
    """Parse files (in order) with ``workers`` processes; sizes maps dicom_id -> (width, height)."""
    jobs = []
    for p in paths:
        name = Path(p).name
        dicom_id = name[: -len(SUFFIX)] if name.endswith(SUFFIX) else name
        jobs.append((str(p), sizes.get(dicom_id)))
    chunks = [jobs[i: i + chunksize] for i in range(0, len(jobs), chunksize)]
    if workers <= 1 or len(chunks) < 2:
        results = [_parse_chunk(c) for c in chunks]
    else:
        import multiprocessing

        with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork")) as pool:
            results = list(pool.map(_parse_chunk, chunks))
    log = ExclusionLog()
    for _, log_rows in results:
        log.extend(log_rows)
    frames = [frame for frame, _ in results if len(frame)]
    frame = pd.concat(frames, ignore_index=True) if frames else empty_regions()
    return frame, log


def read_image_sizes(metadata_csv: Path | str) -> dict[str, tuple[int, int]]:
    """dicom_id -> (Columns, Rows) = (width, height) from mimic-cxr-2.0.0-metadata.csv.gz."""
    meta = pd.read_csv(metadata_csv, usecols=["dicom_id", "Rows", "Columns"], dtype={"dicom_id": str})
    meta = meta.dropna(subset=["Rows", "Columns"])
    return {d: (int(c), int(r)) for d, r, c in zip(meta["dicom_id"], meta["Rows"], meta["Columns"])}


def gather_shards(paths: Sequence[str | Path]) -> pd.DataFrame:
    """The shards' region rows as one table sorted by (dicom_id, region_index); an image in
    two shards is an error, not a silent duplicate."""
    regions = pd.concat([pd.read_parquet(p) for p in paths], ignore_index=True)
    regions = regions.sort_values(["dicom_id", "region_index"]).reset_index(drop=True)
    if regions.duplicated(["dicom_id", "region_index"]).any():
        raise ValueError("regions: a (dicom_id, region_index) pair occurs in two shards")
    return regions
