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


def default_figure4_id(predictions: pd.DataFrame) -> str | None:
    """The first test image (by dicom_id) whose reference names an abnormality, else None.

    Choosing the figure's image looks at the references only to show a case with a finding;
    no model or metric is chosen on the test split."""
    from .evaluate.chexpert_labeler import is_abnormal_sentence, label_reports

    refs = predictions.assign(dicom_id=predictions["dicom_id"].astype(str),
                              reference_sentence=predictions["reference_sentence"].map(_text))
    refs = refs[refs["reference_sentence"] != ""].sort_values(["dicom_id", "region_index"])
    if refs.empty:
        return None
    labels = label_reports(refs["reference_sentence"].tolist())
    abnormal = [is_abnormal_sentence(row) for _, row in labels.iterrows()]
    hits = refs.loc[abnormal, "dicom_id"]
    return str(hits.iloc[0]) if len(hits) else None


WRAP = 78  # characters per text line in the right panel
LINE_INCHES = 0.155  # height of one text line at FONT_SIZE
FONT_SIZE = 7.5


def _entries(rows: pd.DataFrame) -> list[dict]:
    """One entry per region that is selected or has a reference sentence, in region order."""
    from .evaluate.chexpert_labeler import is_abnormal_sentence, label_reports

    shown = rows[rows["selected"].astype(bool) | (rows["reference_sentence"].map(_text) != "")]
    generated = shown["generated_sentence"].map(_text).tolist()
    reference = shown["reference_sentence"].map(_text).tolist()
    gen_labels = label_reports(generated)
    ref_labels = label_reports(reference)
    entries = []
    for k, (_, r) in enumerate(shown.iterrows()):
        gen, ref = generated[k], reference[k]
        entries.append({
            "region": r["region"], "selected": bool(r["selected"]), "detected": bool(r["detected"]),
            "generated": gen, "reference": ref,
            "generated_abnormal": bool(gen) and is_abnormal_sentence(gen_labels.iloc[k]),
            "reference_abnormal": bool(ref) and is_abnormal_sentence(ref_labels.iloc[k]),
            "agrees": " ".join(gen.split()).casefold() == " ".join(ref.split()).casefold(),
            "box": (float(r["x1"]), float(r["y1"]), float(r["x2"]), float(r["y2"])),
        })
    return entries


def _entry_lines(number: int | None, entry: dict) -> list[tuple[str, dict]]:
    """(text, style) lines of one entry; abnormal sentences bold red, disagreements flagged."""
    head = f"[{number}] " if number is not None else "[–] "
    status = "selected" if entry["selected"] else "not selected"
    flag = "" if entry["agrees"] else "   ≠ reference"
    lines = [(f"{head}{entry['region']} ({status}){flag}", {"weight": "bold"})]
    for label, text, abnormal in (("generated", entry["generated"], entry["generated_abnormal"]),
                                  ("reference", entry["reference"], entry["reference_abnormal"])):
        style = {"color": "#c00000", "weight": "bold"} if abnormal else {"color": "#222222"}
        wrapped = textwrap.wrap(f"{label}: {text or '—'}", WRAP, subsequent_indent="    ")
        lines += [(line, style) for line in wrapped]
    return lines + [("", {})]


def draw_figure4(rows: pd.DataFrame, image: np.ndarray):
    """The figure: the image with the selected regions' boxes, numbered and coloured like
    their text; beside it each selected (or referenced) region's generated and reference
    sentence. The canvas grows with the text, so nothing is cut off."""
    chosen = str(rows["dicom_id"].iloc[0])
    entries = _entries(rows)
    colors = plt.get_cmap("tab10")
    numbered = [e for e in entries if e["selected"] and e["detected"]]
    number_of = {id(e): i + 1 for i, e in enumerate(numbered)}
    lines: list[tuple[str, dict, int | None]] = []
    for entry in entries:
        number = number_of.get(id(entry))
        color = colors((number - 1) % 10) if number else None
        for k, (text, style) in enumerate(_entry_lines(number, entry)):
            lines.append((text, {**style, **({"color": color} if k == 0 and color else {})}, number))
    if not lines:
        lines = [("no region selected or described", {}, None)]
    legend = ("Boxes: the selected regions, numbered as in the text. Red bold: a sentence naming an "
              "abnormality (rule-based CheXpert labeler); ≠: generated differs from reference.")
    text_height = LINE_INCHES * (len(lines) + 3)
    height = max(6.5, text_height + 0.9)
    fig = plt.figure(figsize=(15, height))
    title_inches = 0.5
    fig.suptitle(f"Figure 4: dicom_id {chosen} — generated vs reference sentences per region",
                 y=1 - 0.18 / height, va="top", fontsize=11)
    side = min(6.0, height - title_inches - 0.3)
    ax_img = fig.add_axes([0.02, 1 - (title_inches + side) / height, side / 15, side / height])
    ax_img.imshow(image, cmap="gray")
    ax_img.axis("off")
    for entry in numbered:
        number = number_of[id(entry)]
        color = colors((number - 1) % 10)
        x1, y1, x2, y2 = entry["box"]
        ax_img.add_patch(plt.Rectangle((x1, y1), x2 - x1, y2 - y1, fill=False, lw=1.6, color=color))
        ax_img.text(x1 + 1, y1 + 1, str(number), color=color, fontsize=8, weight="bold", va="top",
                    ha="left", bbox={"facecolor": "black", "alpha": 0.55, "pad": 0.5, "lw": 0})
    left = 0.04 + side / 15
    ax_txt = fig.add_axes([left, 0.02, 0.98 - left, 1 - (title_inches + 0.1) / height - 0.02])
    ax_txt.axis("off")
    top = 1.0
    step = LINE_INCHES / (height * (1 - (title_inches + 0.1) / height - 0.02))
    for text, style, _ in lines:
        if text:
            ax_txt.text(0, top, text, va="top", ha="left", family="DejaVu Sans Mono", fontsize=FONT_SIZE,
                        transform=ax_txt.transAxes, **style)
        top -= step
    ax_txt.text(0, top - step, textwrap.fill(legend, WRAP + 20), va="top", ha="left", fontsize=FONT_SIZE,
                color="#555555", style="italic", transform=ax_txt.transAxes)
    return fig


def figure4(
    predictions_path: str, cache_images: str, cache_index: str, dicom_id: str | None,
    out_png: str, out_csv: str,
) -> str:
    predictions = pd.read_parquet(predictions_path)
    rows = figure4_rows(predictions, dicom_id or default_figure4_id(predictions))
    chosen = rows["dicom_id"].iloc[0]
    index = pd.read_parquet(cache_index)
    match = index[index["dicom_id"].astype(str) == chosen]
    if match.empty:
        raise ValueError(f"{cache_index}: dicom_id {chosen} is not in the image cache")
    image = np.load(cache_images, mmap_mode="r")[int(match["row"].iloc[0])]  # (S, S)
    rows.to_csv(out_csv, index=False)
    fig = draw_figure4(rows, np.asarray(image))
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
