"""MIMIC-CXR-JPG metadata + readable-image check, and the ImaGenome join.

``ingest_mimic_images`` lists every image of the JPG metadata, checks that its file
decodes and records its size. ``join_imagenome`` joins the ImaGenome split CSVs
(``.dcm`` paths -> ``.jpg``) with those images, the reports and the scene-graph regions
on subject_id / study_id / dicom_id, and records every image it leaves out.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pandas as pd

from .exclusions import ExclusionLog
from .images import ImageDecodeError, check_jpeg

JPG_DATASET = "mimic-cxr-jpg"
IMAGENOME_DATASET = "imagenome"
SPLIT_CSV = "mimic-cxr-2.0.0-split.csv.gz"
METADATA_CSV = "mimic-cxr-2.0.0-metadata.csv.gz"
IMAGENOME_SPLITS = ("train", "valid", "test")
DICOM_ID = r"[0-9a-f]{8}(?:-[0-9a-f]{8}){4}"
IMAGE_COLUMNS = ["dicom_id", "subject_id", "study_id", "view_position", "official_split", "jpg_path", "width", "height"]
JOINED_COLUMNS = ["dicom_id", "subject_id", "study_id", "split", "view_position", "jpg_path", "width", "height",
                  "findings", "has_findings"]


def jpg_relpath(subject_id: int, study_id: int, dicom_id: str) -> str:
    sid = str(int(subject_id))
    return f"files/p{sid[:2]}/p{sid}/s{int(study_id)}/{dicom_id}.jpg"


def read_jpg_tables(jpg_root: Path | str) -> pd.DataFrame:
    """Metadata joined with the official split: one row per dicom_id of the metadata."""
    root = Path(jpg_root)
    for name in (METADATA_CSV, SPLIT_CSV):
        if not (root / name).is_file():
            raise FileNotFoundError(f"{root / name}: MIMIC-CXR-JPG table missing")
    meta = pd.read_csv(root / METADATA_CSV, dtype={"dicom_id": str, "ViewPosition": str})
    split = pd.read_csv(root / SPLIT_CSV, dtype={"dicom_id": str, "split": str})
    need = {"dicom_id", "subject_id", "study_id"}
    for name, frame in ((METADATA_CSV, meta), (SPLIT_CSV, split)):
        missing = need - set(frame.columns)
        if missing:
            raise ValueError(f"{root / name}: missing column(s) {sorted(missing)}")
    split = split[["dicom_id", "subject_id", "study_id", "split"]].drop_duplicates("dicom_id")
    merged = meta.merge(split, on=["dicom_id"], how="left", suffixes=("", "_split"))
    return merged


def _check(args: tuple[str, Path]) -> tuple[str, int, int, str]:
    dicom_id, path = args
    if not path.is_file():
        return dicom_id, -1, -1, "missing_jpg"
    try:
        width, height = check_jpeg(path)
    except ImageDecodeError as error:
        reason = "truncated_jpg" if "truncated" in str(error).lower() else "unreadable_jpg"
        return dicom_id, -1, -1, reason
    return dicom_id, width, height, ""


def ingest_mimic_images(jpg_root: Path | str, workers: int = 1) -> tuple[pd.DataFrame, ExclusionLog]:
    """Every readable image of the metadata: ``IMAGE_COLUMNS`` (jpg_path relative to the root).

    Reasons: ``missing_jpg``, ``truncated_jpg``, ``unreadable_jpg``, ``not_in_split_csv``,
    ``ids_disagree`` (metadata and split CSV name different subject/study), ``duplicate_dicom_id``.
    """
    root = Path(jpg_root)
    table = read_jpg_tables(root)
    log = ExclusionLog()
    duplicated = table.duplicated("dicom_id", keep="first")
    for d in table.loc[duplicated, "dicom_id"]:
        log.add(JPG_DATASET, d, "duplicate_dicom_id")
    table = table.loc[~duplicated]
    no_split = table["split"].isna()
    for d in table.loc[no_split, "dicom_id"]:
        log.add(JPG_DATASET, d, "not_in_split_csv")
    table = table.loc[~no_split]
    disagree = (table["subject_id"] != table["subject_id_split"]) | (table["study_id"] != table["study_id_split"])
    for d in table.loc[disagree, "dicom_id"]:
        log.add(JPG_DATASET, d, "ids_disagree")
    table = table.loc[~disagree].copy()
    table["subject_id"] = table["subject_id"].astype("int64")
    table["study_id"] = table["study_id"].astype("int64")
    table["jpg_path"] = [jpg_relpath(s, t, d) for s, t, d in zip(table["subject_id"], table["study_id"], table["dicom_id"])]

    jobs = [(d, root / p) for d, p in zip(table["dicom_id"], table["jpg_path"])]
    if workers > 1:
        with ThreadPoolExecutor(workers) as pool:  # Pillow releases the GIL while decoding
            checked = list(pool.map(_check, jobs))
    else:
        checked = [_check(j) for j in jobs]
    sizes = pd.DataFrame(checked, columns=["dicom_id", "width", "height", "problem"])
    for d, problem in zip(sizes["dicom_id"], sizes["problem"]):
        if problem:
            log.add(JPG_DATASET, d, problem)
    table = table.merge(sizes, on="dicom_id", how="left")
    table = table.loc[table["problem"] == ""]
    view = table.get("ViewPosition", pd.Series("", index=table.index)).fillna("").astype(str).str.strip()
    out = pd.DataFrame({
        "dicom_id": table["dicom_id"].astype(str),
        "subject_id": table["subject_id"].astype("int64"),
        "study_id": table["study_id"].astype("int64"),
        "view_position": view.str.upper(),
        "official_split": table["split"].astype(str),
        "jpg_path": table["jpg_path"].astype(str),
        "width": table["width"].astype("int64"),
        "height": table["height"].astype("int64"),
    })
    return out.sort_values("dicom_id").reset_index(drop=True), log


def read_imagenome_splits(imagenome_root: Path | str) -> tuple[pd.DataFrame, set[str]]:
    """The split CSVs (``split`` column added, ``.dcm`` -> ``.jpg``) and the gold images to avoid."""
    splits_dir = Path(imagenome_root) / "silver_dataset" / "splits"
    frames = []
    for split in IMAGENOME_SPLITS:
        path = splits_dir / f"{split}.csv"
        if not path.is_file():
            raise FileNotFoundError(f"{path}: ImaGenome split CSV missing")
        frame = pd.read_csv(path, dtype={"dicom_id": str, "path": str, "ViewPosition": str})
        frame = frame.drop(columns=[c for c in frame.columns if c == "" or c.startswith("Unnamed")])
        missing = {"subject_id", "study_id", "dicom_id"} - set(frame.columns)
        if missing:
            raise ValueError(f"{path}: missing column(s) {sorted(missing)}")
        frame["split"] = split
        frames.append(frame)
    splits = pd.concat(frames, ignore_index=True)
    if "path" in splits.columns:
        splits["jpg_path_split"] = splits["path"].astype(str).str.replace(r"\.dcm$", ".jpg", regex=True)
    avoid: set[str] = set()
    avoid_path = splits_dir / "images_to_avoid.csv"
    if avoid_path.is_file():
        gold = pd.read_csv(avoid_path, dtype=str)
        column = "dicom_id" if "dicom_id" in gold.columns else next(
            (c for c in gold.columns if gold[c].dropna().str.fullmatch(DICOM_ID).all() and gold[c].notna().any()), None
        )
        if column is None:
            raise ValueError(f"{avoid_path}: no dicom_id column (nor a column of dicom ids)")
        avoid = set(gold[column].dropna().astype(str))
    return splits, avoid


def join_imagenome(
    imagenome_root: Path | str,
    images: pd.DataFrame,
    reports: pd.DataFrame,
    regions: pd.DataFrame,
    scene_graph_ids: Sequence[str] | None = None,
) -> tuple[pd.DataFrame, ExclusionLog]:
    """Join the ImaGenome split CSVs with images, reports and regions (``JOINED_COLUMNS``).

    Exclusion reasons (dataset ``imagenome``, item = dicom_id), checked in this order:
    ``duplicate_dicom_id``, ``images_to_avoid`` (gold set), ``path_disagrees`` (the CSV path
    names another patient/study), ``no_readable_jpg``, ``ids_disagree`` (CSV and JPG metadata
    name different subject/study), ``no_scene_graph``, ``no_report``,
    ``no_findings_valid_test``. Train images without FINDINGS are kept (``has_findings`` False).
    """
    splits, avoid = read_imagenome_splits(imagenome_root)
    log = ExclusionLog()

    def drop(mask: pd.Series, reason: str) -> None:
        nonlocal splits
        for d in splits.loc[mask, "dicom_id"]:
            log.add(IMAGENOME_DATASET, d, reason)
        splits = splits.loc[~mask]

    drop(splits.duplicated("dicom_id", keep="first"), "duplicate_dicom_id")
    drop(splits["dicom_id"].isin(avoid), "images_to_avoid")
    if "jpg_path_split" in splits.columns:
        expected = [jpg_relpath(s, t, d) for s, t, d in zip(splits["subject_id"], splits["study_id"], splits["dicom_id"])]
        drop(splits["jpg_path_split"].to_numpy() != pd.Series(expected, index=splits.index).to_numpy(), "path_disagrees")
    known = images.set_index("dicom_id")
    drop(~splits["dicom_id"].isin(known.index), "no_readable_jpg")
    img = known.loc[splits["dicom_id"]]
    drop(pd.Series((img["subject_id"].to_numpy() != splits["subject_id"].to_numpy())
                   | (img["study_id"].to_numpy() != splits["study_id"].to_numpy()), index=splits.index), "ids_disagree")
    with_graph = set(regions["dicom_id"].unique()) if scene_graph_ids is None else set(scene_graph_ids)
    drop(~splits["dicom_id"].isin(with_graph), "no_scene_graph")
    report_index = reports.set_index("study_id")
    drop(~splits["study_id"].isin(report_index.index), "no_report")
    rep = report_index.loc[splits["study_id"]]
    has = pd.Series(rep["has_findings"].to_numpy(), index=splits.index)
    drop((splits["split"] != "train") & ~has, "no_findings_valid_test")

    img = known.loc[splits["dicom_id"]]
    rep = report_index.loc[splits["study_id"]]
    view_csv = splits.get("ViewPosition", pd.Series("", index=splits.index)).fillna("").astype(str).str.upper()
    view = view_csv.where(view_csv != "", img["view_position"].to_numpy())
    out = pd.DataFrame({
        "dicom_id": splits["dicom_id"].astype(str).to_numpy(),
        "subject_id": splits["subject_id"].astype("int64").to_numpy(),
        "study_id": splits["study_id"].astype("int64").to_numpy(),
        "split": splits["split"].to_numpy(),
        "view_position": view.to_numpy(),
        "jpg_path": img["jpg_path"].to_numpy(),
        "width": img["width"].astype("int64").to_numpy(),
        "height": img["height"].astype("int64").to_numpy(),
        "findings": rep["findings"].astype(str).to_numpy(),
        "has_findings": rep["has_findings"].astype(bool).to_numpy(),
    })
    order = {s: i for i, s in enumerate(IMAGENOME_SPLITS)}
    out = out.sort_values(["split", "dicom_id"], key=lambda c: c.map(order) if c.name == "split" else c)
    return out.reset_index(drop=True), log
