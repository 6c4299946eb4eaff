"""Figure 4 (one test image: detected regions, generated vs reference sentences) and the
ROC curves of the Table 2 probes. Figures plot values read from files; no metric here."""

from __future__ import annotations

import json
import textwrap
from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

FIGURE4_COLUMNS = ["dicom_id", "region_index", "region", "x1", "y1", "x2", "y2", "detected",
                   "selected", "generated_sentence", "reference_sentence"]


def figure4_rows(predictions: pd.DataFrame, dicom_id: str | None) -> pd.DataFrame:
    predictions = predictions.assign(dicom_id=predictions["dicom_id"].astype(str))
    ids = sorted(predictions["dicom_id"].unique())
    if not ids:
        raise ValueError("no test predictions to draw")
    chosen = str(dicom_id) if dicom_id else ids[0]
    if chosen not in ids:
        raise ValueError(f"figure4 dicom_id {chosen} is not among the test predictions")
    rows = predictions[predictions["dicom_id"] == chosen].sort_values("region_index")
    return rows[FIGURE4_COLUMNS].reset_index(drop=True)


def _text(value) -> str:
    return "" if value is None or (isinstance(value, float) and np.isnan(value)) else str(value)


def figure4(
    predictions_path: str, cache_images: str, cache_index: str, dicom_id: str | None,
    out_png: str, out_csv: str,
) -> str:
    rows = figure4_rows(pd.read_parquet(predictions_path), dicom_id)
    chosen = rows["dicom_id"].iloc[0]
    index = pd.read_parquet(cache_index)
    match = index[index["dicom_id"].astype(str) == chosen]
    if match.empty:
        raise ValueError(f"{cache_index}: dicom_id {chosen} is not in the image cache")
    image = np.load(cache_images, mmap_mode="r")[int(match["row"].iloc[0])]  # (S, S)
    rows.to_csv(out_csv, index=False)

    shown = rows[rows["selected"].astype(bool) | (rows["reference_sentence"].map(_text) != "")]
    fig, (ax_img, ax_txt) = plt.subplots(1, 2, figsize=(14, 7), gridspec_kw={"width_ratios": [1, 1.3]})
    ax_img.imshow(image, cmap="gray")
    ax_img.set_title(f"dicom_id {chosen}")
    ax_img.axis("off")
    colors = plt.get_cmap("tab20")
    for k, (_, r) in enumerate(rows[rows["detected"].astype(bool)].iterrows()):
        selected = bool(r["selected"])
        ax_img.add_patch(plt.Rectangle(
            (r["x1"], r["y1"]), r["x2"] - r["x1"], r["y2"] - r["y1"], fill=False,
            lw=2 if selected else 0.6, ls="-" if selected else ":", color=colors(k % 20)))
        if selected:
            ax_img.text(r["x1"], r["y1"], r["region"], color=colors(k % 20), fontsize=7, va="bottom")
    ax_txt.axis("off")
    lines = []
    for _, r in shown.iterrows():
        lines.append(f"{r['region']}{' (selected)' if bool(r['selected']) else ''}")
        lines += textwrap.wrap("generated: " + (_text(r["generated_sentence"]) or "—"), 80)
        lines += textwrap.wrap("reference: " + (_text(r["reference_sentence"]) or "—"), 80)
        lines.append("")
    ax_txt.text(0, 1, "\n".join(lines) or "no region selected or described", va="top",
                family="monospace", fontsize=7, transform=ax_txt.transAxes)
    fig.tight_layout()
    fig.savefig(out_png, dpi=120)
    plt.close(fig)
    return chosen


def roc_figure(metrics_paths: Sequence[str], labels: Sequence[str], out_png: str) -> None:
    fig, ax = plt.subplots(figsize=(5.5, 5.5))
    for path, label in zip(metrics_paths, labels):
        doc = json.loads(Path(path).read_text())
        roc, auc = doc["roc"], doc["metrics"]["AUC"]["value"]
        if roc["fpr"]:
            ax.plot(roc["fpr"], roc["tpr"], label=f"{label} seed {doc['seed']} (AUC {auc:.3f})")
    ax.plot([0, 1], [0, 1], ls="--", color="grey", lw=0.8)
    ax.set_xlabel("false positive rate")
    ax.set_ylabel("true positive rate")
    ax.set_title("RSNA test: linear probes")
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    fig.savefig(out_png, dpi=120)
    plt.close(fig)
