"""Seeded, patient-level subsamples of the ImaGenome splits, and the RSNA split.

Sizes are a fraction of a split's images (float, 0 < x <= 1) or an image count (int >= 1).
A subsample draws whole patients in a seeded random order until the split's image target
is reached, so one patient's images never straddle two subsamples' splits.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split

SPLITS = ("train", "valid", "test")
SUBSAMPLE_COLUMNS = ["dicom_id", "subject_id", "study_id", "split"]


class PatientOverlapError(ValueError):
    """A patient appears in more than one split."""


def target_count(size: float | int, available: int, what: str = "split") -> int:
    """Images wanted: ``round(fraction * available)`` (at least 1 when available) or the count."""
    if isinstance(size, bool) or not isinstance(size, (int, float, np.integer, np.floating)):
        raise TypeError(f"{what}: size {size!r} is neither a fraction nor a count")
    if isinstance(size, (float, np.floating)):
        if not 0 < size <= 1:
            raise ValueError(f"{what}: fraction {size} outside (0, 1]")
        return min(available, max(1, round(size * available))) if available else 0
    if size < 1:
        raise ValueError(f"{what}: count {size} < 1")
    if size > available:
        raise ValueError(f"{what}: {size} images requested but only {available} available")
    return int(size)


def sample_patients(frame: pd.DataFrame, size: float | int, rng: np.random.Generator, what: str) -> pd.DataFrame:
    """Whole patients, in a seeded random order, until the image count reaches the target."""
    target = target_count(size, len(frame), what)
    if target >= len(frame):
        return frame
    counts = frame.groupby("subject_id").size().sort_index()
    order = rng.permutation(counts.index.to_numpy())
    cumulative = counts.loc[order].cumsum().to_numpy()
    n_patients = int(np.searchsorted(cumulative, target, side="left")) + 1
    chosen = set(order[:n_patients].tolist())
    return frame[frame["subject_id"].isin(chosen)]


def subsample(images: pd.DataFrame, sizes: Mapping[str, float | int], seed: int) -> pd.DataFrame:
    """``dicom_id, subject_id, study_id, split`` of a patient-level subsample within each split."""
    parts = []
    for i, split in enumerate(SPLITS):
        pool = images[images["split"] == split]
        if split not in sizes:
            raise KeyError(f"subsample sizes name no {split!r} size")
        rng = np.random.default_rng([int(seed), i])
        parts.append(sample_patients(pool, sizes[split], rng, f"{split} split"))
    out = pd.concat(parts, ignore_index=True)[SUBSAMPLE_COLUMNS]
    out = out.astype({"dicom_id": str, "subject_id": "int64", "study_id": "int64", "split": str})
    out = out.sort_values(["split", "subject_id", "study_id", "dicom_id"]).reset_index(drop=True)
    check_patient_disjoint(out)
    return out


def check_patient_disjoint(frame: pd.DataFrame, patient_column: str = "subject_id") -> None:
    """Raise PatientOverlapError when any patient has images in two splits."""
    n_splits = frame.groupby(patient_column)["split"].nunique()
    shared = n_splits[n_splits > 1]
    if len(shared):
        examples = ", ".join(str(p) for p in shared.index[:10])
        raise PatientOverlapError(
            f"{len(shared)} patient(s) appear in more than one split (e.g. {examples}); "
            "splits must be patient-level"
        )


def write_id_lists(frame: pd.DataFrame, folder: Path | str) -> None:
    """``{folder}/{split}.txt``: the dicom_ids of each split, one per line."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for split in SPLITS:
        ids = frame.loc[frame["split"] == split, "dicom_id"].tolist()
        (folder / f"{split}.txt").write_text("".join(f"{d}\n" for d in ids))


# --- RSNA ---------------------------------------------------------------------------

def rsna_image_labels(box_rows: pd.DataFrame) -> pd.DataFrame:
    """One row per image: ``patientId, label`` = the maximum Target over its box rows."""
    labels = box_rows.groupby("patientId")["Target"].max().astype("int64")
    return labels.rename("label").reset_index()


def split_rsna(
    labels: pd.DataFrame,
    test_size: float,
    seed: int,
    max_rows: Mapping[str, int | None] | None = None,
    train_subset: float | int = 1.0,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``(kept, capped)``: the split images and those beyond a per-split cap.

    ``train_test_split(test_size, random_state=seed)``, the held-out part halved (same seed)
    with the *first* half as test and the second as valid (GLoRIA's order); then the first ``max_rows[split]`` rows of each split; then a seeded
    training subset (fraction or count, at least one image, not stratified).
    """
    ids = labels["patientId"].astype(str).to_numpy()
    train_ids, rest = train_test_split(ids, test_size=test_size, random_state=seed)
    test_ids, valid_ids = train_test_split(rest, test_size=0.5, random_state=seed)  # GLoRIA: test first
    by_id = labels.set_index("patientId")
    parts, capped = [], []
    for split, chosen in (("train", train_ids), ("valid", valid_ids), ("test", test_ids)):
        part = by_id.loc[list(chosen)].reset_index()
        part["split"] = split
        cap = (max_rows or {}).get(split)
        if cap is not None and len(part) > cap:
            capped.append(part.iloc[cap:])
            part = part.iloc[:cap]
        parts.append(part)
    kept = pd.concat(parts, ignore_index=True)
    n_train = int((kept["split"] == "train").sum())
    n_subset = target_count(train_subset, n_train, "rsna train_subset")
    rng = np.random.default_rng(seed)
    train_rows = np.flatnonzero(kept["split"].to_numpy() == "train")
    chosen_rows = rng.choice(train_rows, size=n_subset, replace=False) if n_subset else []
    kept["in_train_subset"] = False
    kept.loc[chosen_rows, "in_train_subset"] = True
    capped_frame = pd.concat(capped, ignore_index=True) if capped else kept.iloc[:0]
    return kept, capped_frame
