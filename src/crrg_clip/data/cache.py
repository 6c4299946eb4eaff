"""Letterboxed uint8 image caches: ``images.npy`` (N, S, S) memmap + an index table.

Workers (a process pool) each write their own rows into the file with ``os.pwrite`` at the
row's offset, so only the geometry travels back. Not through a writable memmap: every row
written that way stays mapped into the worker, whose resident size then grows with the
cache (2.2 GiB per worker for 10k images at 512 px, benchmarks/results/data_scale.md). Rows
follow the order of the items given, so a cache is deterministic for a given item list.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd

from .images import load_dicom_letterbox, load_jpeg_letterbox

GEOMETRY_COLUMNS = ["row", "scale", "pad_x", "pad_y", "width", "height"]

_out: dict = {}  # this process's open cache file: fd, offset of row 0, bytes per row
_settings: dict = {}


def _init_worker(npy_path: str, kind: str, size: int, draft: bool) -> None:
    global _settings
    header = np.load(npy_path, mmap_mode="r")  # only to read the data offset after the .npy header
    _out.update(fd=os.open(npy_path, os.O_WRONLY), offset=header.offset, row_bytes=size * size)
    del header
    _settings = {"kind": kind, "size": size, "draft": draft}


def _close_output() -> None:
    if "fd" in _out:
        os.close(_out.pop("fd"))


def _decode(path: str, kind: str, size: int, draft: bool):
    if kind == "jpeg":
        return load_jpeg_letterbox(path, size, draft=draft)
    if kind == "dicom":
        return load_dicom_letterbox(path, size)
    raise ValueError(f"unknown image kind {kind!r}")


def _work(job: tuple[int, str]) -> tuple[int, float, int, int, int, int]:
    row, path = job
    canvas, geo = _decode(path, **_settings)
    data = np.ascontiguousarray(canvas, dtype=np.uint8).tobytes()  # (S, S) row-major, as the .npy layout
    if len(data) != _out["row_bytes"]:
        raise ValueError(f"{path}: decoded to {canvas.shape}, expected a square of {_out['row_bytes']} bytes")
    os.pwrite(_out["fd"], data, _out["offset"] + row * _out["row_bytes"])
    return row, geo.scale, geo.pad_x, geo.pad_y, geo.width, geo.height


def build_cache(
    paths: Sequence[Path | str],
    out_npy: Path | str,
    size: int,
    kind: str = "jpeg",
    workers: int = 1,
    draft: bool = True,
    chunksize: int = 8,
) -> pd.DataFrame:
    """Write ``uint8 (N, size, size)`` to ``out_npy``; return ``GEOMETRY_COLUMNS`` per row.

    ``kind`` is ``jpeg`` or ``dicom``. A file that fails to decode raises ImageDecodeError
    naming it (inputs were checked at ingest, so this is a real fault).
    """
    out_npy = Path(out_npy)
    out_npy.parent.mkdir(parents=True, exist_ok=True)
    images = np.lib.format.open_memmap(out_npy, mode="w+", dtype=np.uint8, shape=(len(paths), size, size))
    del images  # header and zeros written; workers reopen it
    jobs = [(i, str(p)) for i, p in enumerate(paths)]
    args = (str(out_npy), kind, size, draft)
    if workers <= 1 or len(jobs) < 2:
        _init_worker(*args)
        try:
            results = [_work(j) for j in jobs]
        finally:
            _close_output()
    else:
        context = multiprocessing.get_context("fork")
        with ProcessPoolExecutor(workers, mp_context=context, initializer=_init_worker, initargs=args) as pool:
            results = list(pool.map(_work, jobs, chunksize=chunksize))
    geometry = pd.DataFrame(results, columns=GEOMETRY_COLUMNS).sort_values("row").reset_index(drop=True)
    return geometry.astype({"row": "int64", "scale": "float64", "pad_x": "int64", "pad_y": "int64",
                            "width": "int64", "height": "int64"})


def map_region_boxes(regions: pd.DataFrame, index: pd.DataFrame) -> pd.DataFrame:
    """Region rows of the cached images with x1..y2 in cache pixels (``original * scale + pad``)."""
    geo = index.set_index("dicom_id")[["scale", "pad_x", "pad_y"]]
    out = regions[regions["dicom_id"].isin(geo.index)].copy()
    g = geo.loc[out["dicom_id"]]
    scale = g["scale"].to_numpy()
    for col, pad in (("x1", "pad_x"), ("x2", "pad_x"), ("y1", "pad_y"), ("y2", "pad_y")):
        out[col] = out[col].to_numpy() * scale + g[pad].to_numpy()
    return out.sort_values(["dicom_id", "region_index"]).reset_index(drop=True)


def cache_mimic(
    images: pd.DataFrame, subsamples: Sequence[pd.DataFrame], regions: pd.DataFrame, jpg_root: Path | str,
    out_dir: Path | str, size: int, workers: int = 1, draft: bool = True,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Cache every image (all views) of every study in any subsample.

    ``images`` is mimic_images.parquet. Returns ``(index, regions)`` and writes
    ``images.npy``; index columns ``dicom_id, row, study_id, view_position, scale, pad_x,
    pad_y, width, height``.
    """
    studies = set()
    for frame in subsamples:
        studies.update(frame["study_id"].astype("int64").tolist())
    chosen = images[images["study_id"].isin(studies)].sort_values(["study_id", "dicom_id"]).reset_index(drop=True)
    root = Path(jpg_root)
    geometry = build_cache([root / p for p in chosen["jpg_path"]], Path(out_dir) / "images.npy", size,
                           kind="jpeg", workers=workers, draft=draft)
    index = pd.DataFrame({
        "dicom_id": chosen["dicom_id"].astype(str),
        "row": geometry["row"],
        "study_id": chosen["study_id"].astype("int64"),
        "view_position": chosen["view_position"].astype(str),
        "scale": geometry["scale"],
        "pad_x": geometry["pad_x"],
        "pad_y": geometry["pad_y"],
        "width": geometry["width"],
        "height": geometry["height"],
    })
    return index, map_region_boxes(regions, index)


def cache_rsna(
    rsna: pd.DataFrame, rsna_root: Path | str, out_dir: Path | str, size: int, workers: int = 1
) -> pd.DataFrame:
    """Cache every RSNA image of rsna.parquet; index ``patientId, row, label, split, in_train_subset``."""
    ordered = rsna.reset_index(drop=True)
    root = Path(rsna_root)
    geometry = build_cache([root / p for p in ordered["dcm_path"]], Path(out_dir) / "images.npy", size,
                           kind="dicom", workers=workers)
    return pd.DataFrame({
        "patientId": ordered["patientId"].astype(str),
        "row": geometry["row"],
        "label": ordered["label"].astype("int64"),
        "split": ordered["split"].astype(str),
        "in_train_subset": ordered["in_train_subset"].astype(bool),
    })
