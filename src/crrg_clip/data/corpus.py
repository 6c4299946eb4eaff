"""The training-split FINDINGS: the corpus every demo tokenizer and model is built on."""

from __future__ import annotations

from pathlib import Path

import pandas as pd


def training_findings(images_path: Path | str) -> list[str]:
    """Non-empty FINDINGS of the training split of ``results/data/images.parquet``, by dicom_id."""
    images = pd.read_parquet(images_path)
    missing = [c for c in ("dicom_id", "split", "findings") if c not in images.columns]
    if missing:
        raise ValueError(f"{images_path}: missing column(s) {missing}")
    train = images[images["split"] == "train"].sort_values("dicom_id", kind="stable")
    texts = [t for t in train["findings"].fillna("").astype(str).str.strip() if t]
    if not texts:
        raise ValueError(f"{images_path}: no FINDINGS in the training split to build a demo model on")
    return texts
