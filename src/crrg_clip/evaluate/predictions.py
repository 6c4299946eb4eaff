"""Validation of prediction files before any metric is computed.

A prediction file with missing, duplicate or foreign ids, or empty reports, is refused
with a ``PredictionFileError`` naming the file and the offending ids.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import pandas as pd

REPORT_COLUMNS = ("dicom_id", "report")
PROBE_COLUMNS = ("patientId", "label", "prob")
REGION_COLUMNS = (
    "dicom_id", "region_index", "x1", "y1", "x2", "y2", "detected", "selected",
    "generated_sentence", "reference_sentence",
)
_SHOW = 10


class PredictionFileError(ValueError):
    """A prediction file is unusable; the message names the file and every problem."""

    def __init__(self, path: str | Path, problems: list[str]):
        self.path = str(path)
        self.problems = problems
        super().__init__(f"{self.path}: refused: " + "; ".join(problems))


def _names(ids: Iterable) -> str:
    ids = sorted(str(i) for i in ids)
    shown = ", ".join(ids[:_SHOW])
    return shown + (f" ... ({len(ids)} in all)" if len(ids) > _SHOW else "")


def _check_columns(df: pd.DataFrame, required: Iterable[str], path) -> None:
    missing = [c for c in required if c not in df.columns]
    if missing:
        raise PredictionFileError(path, [f"missing column(s) {', '.join(missing)}"])


def _id_problems(ids: pd.Series, expected: set[str], what: str) -> list[str]:
    problems = []
    duplicated = ids[ids.duplicated()].unique()
    if len(duplicated):
        problems.append(f"duplicate {what}(s): {_names(duplicated)}")
    present = set(ids)
    foreign = present - expected
    if foreign:
        problems.append(f"{what}(s) not in the test split: {_names(foreign)}")
    missing = expected - present
    if missing:
        problems.append(f"missing {what}(s) of the test split: {_names(missing)}")
    return problems


def validate_reports(df: pd.DataFrame, expected_ids: Iterable[str], path, allow_empty: bool = False) -> pd.DataFrame:
    """Check a ``dicom_id, report`` table against the test ids; return it sorted by id.

    ``allow_empty``: our own generators may write an empty report (an image where the
    detector found no region); it is scored as written (and counted by the caller). For an
    external file an empty report is an error."""
    _check_columns(df, REPORT_COLUMNS, path)
    df = df.copy()
    df["dicom_id"] = df["dicom_id"].astype(str)
    problems = _id_problems(df["dicom_id"], {str(i) for i in expected_ids}, "dicom_id")
    text = df["report"].astype("string").fillna("")
    df["report"] = text.astype(str)
    empty = df.loc[text.str.strip() == "", "dicom_id"]
    if len(empty) and not allow_empty:
        problems.append(f"empty report(s) for dicom_id(s): {_names(empty)}")
    if problems:
        raise PredictionFileError(path, problems)
    df["report"] = text.astype(str)
    return df.sort_values("dicom_id").reset_index(drop=True)


def validate_probe(df: pd.DataFrame, test: pd.DataFrame, path) -> pd.DataFrame:
    """Check ``patientId, label, prob`` against the RSNA test split (``patientId, label``)."""
    _check_columns(df, PROBE_COLUMNS, path)
    df = df.copy()
    df["patientId"] = df["patientId"].astype(str)
    truth = dict(zip(test["patientId"].astype(str), test["label"].astype(int)))
    problems = _id_problems(df["patientId"], set(truth), "patientId")
    prob = pd.to_numeric(df["prob"], errors="coerce")
    bad = df.loc[prob.isna() | (prob < 0) | (prob > 1), "patientId"]
    if len(bad):
        problems.append(f"prob missing or outside [0, 1] for patientId(s): {_names(bad)}")
    label = pd.to_numeric(df["label"], errors="coerce")
    unusable = df.loc[~label.isin([0, 1]), "patientId"]  # NaN, text, or not a class
    if len(unusable):
        problems.append(f"label missing or not 0/1 for patientId(s): {_names(unusable)}")
    wrong = [
        pid for pid, value in zip(df["patientId"], label)
        if pid in truth and value in (0, 1) and int(value) != truth[pid]
    ]
    if wrong:
        problems.append(f"label differs from results/data/rsna.parquet for: {_names(wrong)}")
    if problems:
        raise PredictionFileError(path, problems)
    df["prob"] = prob.astype(float)
    df["label"] = label.astype(int)
    return df.sort_values("patientId").reset_index(drop=True)


def validate_region_predictions(
    df: pd.DataFrame, expected_ids: Iterable[str], n_regions: int, path
) -> pd.DataFrame:
    """Check one row per (test image, region) of ``predictions_test.parquet``."""
    _check_columns(df, REGION_COLUMNS, path)
    df = df.copy()
    df["dicom_id"] = df["dicom_id"].astype(str)
    expected = {str(i) for i in expected_ids}
    problems = []
    keys = df["dicom_id"] + "/" + df["region_index"].astype(str)
    duplicated = keys[keys.duplicated()].unique()
    if len(duplicated):
        problems.append(f"duplicate (dicom_id/region_index) row(s): {_names(duplicated)}")
    present = set(df["dicom_id"])
    if present - expected:
        problems.append(f"dicom_id(s) not in the test split: {_names(present - expected)}")
    if expected - present:
        problems.append(f"missing dicom_id(s) of the test split: {_names(expected - present)}")
    counts = df.groupby("dicom_id").size()
    incomplete = counts[counts != n_regions].index
    if len(incomplete):
        problems.append(f"dicom_id(s) without exactly {n_regions} region rows: {_names(incomplete)}")
    if "fallback" not in df.columns:
        df["fallback"] = False  # written before the column existed
    elif df["fallback"].isna().any() or not df["fallback"].isin([True, False]).all():
        problems.append("column fallback must be boolean (True where only the fallback selected the region)")
    if problems:
        raise PredictionFileError(path, problems)
    df["fallback"] = df["fallback"].astype(bool)
    return df.sort_values(["dicom_id", "region_index"]).reset_index(drop=True)


def read_parquet(path) -> pd.DataFrame:
    try:
        return pd.read_parquet(path)
    except Exception as error:  # noqa: BLE001 - re-raised with the file named
        raise PredictionFileError(path, [f"unreadable parquet ({error})"]) from error


def read_reports_csv(path) -> pd.DataFrame:
    """An external system's ``dicom_id,report`` CSV (ids kept as strings)."""
    try:
        df = pd.read_csv(path, dtype={"dicom_id": str, "report": str}, keep_default_na=False)
    except Exception as error:  # noqa: BLE001 - re-raised with the file named
        raise PredictionFileError(path, [f"unreadable CSV ({error})"]) from error
    return df
