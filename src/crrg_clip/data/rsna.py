"""RSNA Pneumonia Detection (stage 2): per-image labels, readable DICOMs, the split."""

from __future__ import annotations

from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pandas as pd

from .exclusions import ExclusionLog
from .images import ImageDecodeError, load_dicom
from .splits import rsna_image_labels, split_rsna

DATASET = "rsna"
LABELS_CSV = "stage_2_train_labels.csv"
IMAGES_DIR = "stage_2_train_images"
COLUMNS = ["patientId", "label", "split", "in_train_subset", "dcm_path"]


def read_rsna_labels(root: Path | str) -> pd.DataFrame:
    path = Path(root) / LABELS_CSV
    if not path.is_file():
        raise FileNotFoundError(f"{path}: RSNA label table missing")
    rows = pd.read_csv(path, dtype={"patientId": str})
    missing = {"patientId", "Target"} - set(rows.columns)
    if missing:
        raise ValueError(f"{path}: missing column(s) {sorted(missing)}")
    return rows


def _check(args: tuple[str, Path]) -> tuple[str, str]:
    patient_id, path = args
    if not path.is_file():
        return patient_id, "missing_dcm"
    try:
        load_dicom(path)
    except ImageDecodeError:
        return patient_id, "unreadable_dcm"
    return patient_id, ""


def ingest_rsna(
    root: Path | str,
    test_size: float,
    seed: int,
    max_rows: Mapping[str, int | None] | None = None,
    train_subset: float | int = 1.0,
    workers: int = 1,
) -> tuple[pd.DataFrame, ExclusionLog]:
    """``COLUMNS`` for every readable labelled image; the split is drawn over readable images.

    Reasons (dataset ``rsna``, item = patientId): ``bad_target`` (Target not 0/1),
    ``missing_dcm``, ``unreadable_dcm`` (the pixel data does not decode), ``over_split_cap``
    (beyond ``max_rows``; by design, not counted against the QC threshold).
    """
    root = Path(root)
    rows = read_rsna_labels(root)
    log = ExclusionLog()
    target = pd.to_numeric(rows["Target"], errors="coerce")
    bad = ~target.isin([0, 1])
    for pid in rows.loc[bad, "patientId"].drop_duplicates():
        log.add(DATASET, pid, "bad_target")
    rows = rows.loc[~rows["patientId"].isin(rows.loc[bad, "patientId"])].assign(Target=target[~bad].astype("int64"))
    labels = rsna_image_labels(rows)
    jobs = [(pid, root / IMAGES_DIR / f"{pid}.dcm") for pid in labels["patientId"]]
    if workers > 1:
        with ThreadPoolExecutor(workers) as pool:
            problems = list(pool.map(_check, jobs))
    else:
        problems = [_check(j) for j in jobs]
    failed = {pid for pid, problem in problems if problem}
    for pid, problem in problems:
        if problem:
            log.add(DATASET, pid, problem)
    labels = labels[~labels["patientId"].isin(failed)].reset_index(drop=True)
    kept, capped = split_rsna(labels, test_size, seed, max_rows, train_subset)
    for pid in capped["patientId"]:
        log.add(DATASET, pid, "over_split_cap")
    kept["dcm_path"] = [f"{IMAGES_DIR}/{pid}.dcm" for pid in kept["patientId"]]
    kept = kept.astype({"patientId": str, "label": "int64", "split": str, "in_train_subset": bool, "dcm_path": str})
    return kept[COLUMNS], log
