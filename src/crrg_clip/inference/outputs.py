"""Per image: ``<name>.report.txt``, ``<name>.regions.json`` and ``<name>.png``.

Boxes in the JSON are in the ORIGINAL image's pixels: the cache maps ``cache = original *
scale + pad`` (``crrg_clip.data.images.letterbox_geometry``), so ``original = (cache -
pad) / scale``, clipped to the image. CE labels (CheXpert observations of the report and
of each region's sentence) come from ``crrg_clip.evaluate.chexpert_labeler``; where that
module is not installed they are ``null`` and the command says so once.
"""

from __future__ import annotations

import json
import math
import tempfile
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from crrg_clip.data.images import Letterbox
from crrg_clip.generate import cache_to_original


def original_boxes(rows: pd.DataFrame, geometry: Letterbox) -> np.ndarray:
    """Cache-pixel ``x1, y1, x2, y2`` (R, 4) -> original pixels, clipped to the image."""
    boxes = rows[["x1", "y1", "x2", "y2"]].to_numpy(dtype=np.float64)  # (R, 4)
    return cache_to_original(boxes, geometry.scale, geometry.pad_x, geometry.pad_y,
                             geometry.width, geometry.height)


class CELabeler:
    """``crrg_clip.evaluate.chexpert_labeler``, imported on first use; None-labels if absent."""

    def __init__(self):
        self.module = None
        self.missing: str | None = None
        try:
            from crrg_clip.evaluate import chexpert_labeler  # noqa: PLC0415 (optional, heavy)
            self.module = chexpert_labeler
        except ImportError as error:
            self.missing = f"CE labels left null: crrg_clip.evaluate.chexpert_labeler is not available ({error})"

    def label(self, texts: list[str]) -> list[dict | None]:
        """One ``{observation: 1.0 / 0.0 / -1.0 / None}`` per text ("" gives None)."""
        if self.module is None:
            return [None] * len(texts)
        wanted = [i for i, t in enumerate(texts) if str(t).strip()]
        out: list[dict | None] = [None] * len(texts)
        if not wanted:
            return out
        frame = self.module.label_reports([texts[i] for i in wanted])
        columns = list(self.module.CHEXPERT_OBSERVATIONS)
        for i, (_, row) in zip(wanted, frame.iterrows()):
            out[i] = {c: _number(row[c]) for c in columns}
        return out


def _number(value) -> float | None:
    value = None if value is None else float(value)
    return None if value is None or math.isnan(value) else value


def regions_document(*, path: Path, geometry: Letterbox, rows: pd.DataFrame, report: str,
                     report_labels: dict | None, sentence_labels: list[dict | None], model: str,
                     decoding: dict) -> dict:
    """The JSON of one image: 29 regions in region order."""
    rows = rows.sort_values("region_index").reset_index(drop=True)
    boxes = original_boxes(rows, geometry)  # (R, 4)
    regions = []
    for i, r in rows.iterrows():
        detected = bool(r["detected"])
        abnormal_score = _number(r["abnormal_score"])
        regions.append({
            "region_index": int(r["region_index"]),
            "region": str(r["region"]),
            "detected": detected,
            "detection_score": _number(r["detection_score"]),
            "box": [round(float(v), 2) for v in boxes[i]] if detected else None,
            "selection_score": _number(r["selection_score"]),
            "selected": bool(r["selected"]),
            "sentence": str(r["generated_sentence"]),
            "abnormal": None if abnormal_score is None or not detected else bool(abnormal_score > 0.0),
            "abnormal_score": abnormal_score,
            "ce_labels": sentence_labels[i],
        })
    return {
        "image": str(path),
        "width": geometry.width, "height": geometry.height,
        "letterbox": {"size": geometry.size, "scale": geometry.scale, "pad_x": geometry.pad_x,
                      "pad_y": geometry.pad_y, "note": "cache = original * scale + pad"},
        "model": model,
        "decoding": decoding,
        "report": report,
        "ce_labels": report_labels,
        "regions": regions,
    }


def annotated_png(canvas: np.ndarray, rows: pd.DataFrame, name: str, out_png: Path) -> None:
    """Figure 4's drawing (``crrg_clip.figures.figure4``) of this image and its regions.

    figure4 reads its image from a cache and its rows from a predictions file, so this
    hands it a one-image cache in a temporary folder: the page looks exactly like Figure 4.
    """
    from crrg_clip import figures

    with tempfile.TemporaryDirectory(prefix="crrg-report-") as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # matplotlib layout notes are not the user's business
        tmp = Path(tmp)
        np.save(tmp / "images.npy", canvas[None])  # (1, S, S)
        pd.DataFrame({"dicom_id": [name], "row": [0]}).to_parquet(tmp / "index.parquet", index=False)
        rows.assign(dicom_id=name, reference_sentence="").to_parquet(tmp / "predictions.parquet", index=False)
        figures.figure4(str(tmp / "predictions.parquet"), str(tmp / "images.npy"), str(tmp / "index.parquet"),
                        name, str(out_png), str(tmp / "figure4.csv"))


def write_image_outputs(out_dir: Path, name: str, document: dict, canvas: np.ndarray,
                        rows: pd.DataFrame) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = [out_dir / f"{name}.report.txt", out_dir / f"{name}.regions.json", out_dir / f"{name}.png"]
    paths[0].write_text(document["report"] + "\n")
    paths[1].write_text(json.dumps(document, indent=1) + "\n")
    annotated_png(canvas, rows, name, paths[2])
    return paths
