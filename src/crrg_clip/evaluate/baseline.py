"""Trivial report baselines, scored by the same code as every other system."""

from __future__ import annotations

import pandas as pd

from .rrg import split_findings


def most_frequent_findings(images: pd.DataFrame, splits: pd.DataFrame) -> str:
    """The most frequent training FINDINGS text (ties: the alphabetically first)."""
    train = split_findings(images, splits, "train")
    if train.empty:
        raise ValueError("no training image with FINDINGS: the most-frequent baseline is undefined")
    counts = train["findings"].value_counts()
    best = counts[counts == counts.max()].index
    return sorted(best)[0]


def most_frequent_reports(images: pd.DataFrame, splits: pd.DataFrame,
                          test_splits: pd.DataFrame | None = None) -> pd.DataFrame:
    """``dicom_id, report, reference`` for every test image, the report always the same: the
    most frequent FINDINGS of ``splits``' training images, for the test images of
    ``test_splits`` (default ``splits``; Table 1 scores every row on one test set)."""
    report = most_frequent_findings(images, splits)
    test = split_findings(images, splits if test_splits is None else test_splits, "test")
    return pd.DataFrame({"dicom_id": test["dicom_id"], "report": report,
                         "reference": test["findings"]})
