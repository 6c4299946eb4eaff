"""Tables 1 and 2: the paper's reported rows next to ours. Tables format numbers read from
summary metrics JSON; they never compute a metric.

``source``: ``reported`` (copied from the paper, docs/PROTOCOL.md), ``reproduced``
(produced end to end by this workflow) or ``scored`` (an external system's reports scored
by our evaluation code). A row has exactly one source; reported numbers never fill gaps
in ours or vice versa.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from .evaluate.aggregate import paired_difference

TABLE1_METRICS = ("BLEU1", "BLEU2", "BLEU3", "BLEU4", "METEOR", "ROUGEL", "CIDER", "TFIDF")
TABLE2_METRICS = ("AUC", "Accuracy", "AllNegativeAccuracy")
SOURCES = ("reported", "reproduced", "scored")
NAN = float("nan")

# docs/PROTOCOL.md, "Paper's reported numbers" (BLEU1..4, METEOR, ROUGE-L, CIDEr; "-" = NaN).
_T1 = [
    ("S&T", "MIMIC-CXR 100%", (0.299, 0.184, 0.121, 0.084, 0.124, 0.263, NAN)),
    ("ADAATT", "MIMIC-CXR 100%", (0.299, 0.185, 0.124, 0.088, 0.118, 0.266, NAN)),
    ("GPT-4o", "MIMIC-CXR 3.70%", (0.273, 0.128, 0.061, 0.032, 0.25, 0.177, NAN)),
    ("RRG-base", "MIMIC-CXR 1.35%", (0.224, 0.146, 0.101, 0.072, 0.104, 0.237, 0.429)),
    ("RRG-opt", "MIMIC-CXR 3.70%", (0.241, 0.157, 0.108, 0.078, 0.109, 0.239, 0.513)),
]
REPORTED_TABLE1 = [
    {"model": m, "dataset": d, **dict(zip(TABLE1_METRICS[:7], v)), "TFIDF": NAN, "source": "reported"}
    for m, d, v in _T1
]
REPORTED_TABLE2 = [
    {"model": "ConVIRT", "method": "Random Init", "dataset": "RSNA 1%", "AUC": 0.719, "Accuracy": NAN},
    {"model": "ConVIRT", "method": "ImageNet Init", "dataset": "RSNA 1%", "AUC": 0.831, "Accuracy": NAN},
    {"model": "R-CLIP-base", "method": "radiologist reports", "dataset": "RSNA 1%", "AUC": 0.852, "Accuracy": 0.788},
    {"model": "R-CLIP-opt", "method": "generated reports", "dataset": "RSNA 1%", "AUC": 0.848, "Accuracy": 0.780},
]
for _row in REPORTED_TABLE2:
    _row["AllNegativeAccuracy"] = NAN
    _row["source"] = "reported"

# Our system / encoder names -> the paper's row names.
RRG_NAMES = {"rrg_base": "RRG-base", "rrg_opt": "RRG-opt"}
PROBE_ROWS = {
    "rclip_radiologist": ("R-CLIP-base", "radiologist reports"),
    "rclip_generated": ("R-CLIP-opt", "generated reports"),
    "random_init": ("ResNet-50", "Random Init (ours)"),
    "imagenet_init": ("ResNet-50", "ImageNet Init (ours)"),
}


def rrg_row_name(system: str) -> str:
    if system.endswith("-most_frequent"):
        variant = system[: -len("-most_frequent")]
        return f"Most-frequent report ({RRG_NAMES.get(variant, variant)} split)"
    if system.startswith("external-"):
        return system[len("external-"):]
    return RRG_NAMES.get(system, system)


def dataset_label(subsample: dict | None, synthetic: bool, name: str = "", base: str = "MIMIC-CXR") -> str:
    """``demo (...)`` on synthetic data, else the subsample's size as a fraction or counts."""
    if synthetic:
        return f"demo ({name})" if name else "demo"
    if not subsample:
        return base
    sizes = [subsample.get(k) for k in ("train", "valid", "test")]
    if all(isinstance(s, int) and not isinstance(s, bool) for s in sizes):
        return f"{base} {sum(sizes):,} images ({'/'.join(str(s) for s in sizes)})"
    if len(set(sizes)) == 1 and isinstance(sizes[0], float):
        return f"{base} {sizes[0] * 100:.2f}% of each split"
    return f"{base} train/valid/test {'/'.join(str(s) for s in sizes)}"


def _metric_columns(metrics: Sequence[str]) -> list[str]:
    cols = []
    for m in metrics:
        cols += [f"{m}_std", f"{m}_ci_low", f"{m}_ci_high"]
    return cols + ["n_seeds"]


def table1_columns() -> list[str]:
    return ["model", "dataset", *TABLE1_METRICS, "source", *_metric_columns(TABLE1_METRICS)]


PAIRED_AUC = "AUC_vs_random_init"  # this probe's AUC minus the random-init probe's (paired bootstrap)


def table2_columns() -> list[str]:
    return ["model", "method", "dataset", "AUC", "Accuracy", "source", "AllNegativeAccuracy",
            *_metric_columns(TABLE2_METRICS), PAIRED_AUC, f"{PAIRED_AUC}_ci_low", f"{PAIRED_AUC}_ci_high"]


def _row_from_summary(summary: dict, metrics: Sequence[str]) -> dict:
    row = {"n_seeds": summary["n_seeds"]}
    for m in metrics:
        stats = summary["metrics"].get(m)
        if stats is None:
            row.update({m: NAN, f"{m}_std": NAN, f"{m}_ci_low": NAN, f"{m}_ci_high": NAN})
            continue
        row.update({m: stats["mean"], f"{m}_std": stats["std"],
                    f"{m}_ci_low": stats["ci_low"], f"{m}_ci_high": stats["ci_high"]})
    return row


def build_table1(entries: Sequence[dict]) -> pd.DataFrame:
    """``entries``: ``{"summary": path, "model", "dataset", "source"}`` per row of ours."""
    rows = [dict(r) for r in REPORTED_TABLE1]
    for entry in entries:
        summary = json.loads(Path(entry["summary"]).read_text())
        rows.append({"model": entry["model"], "dataset": entry["dataset"], "source": entry["source"],
                     **_row_from_summary(summary, TABLE1_METRICS)})
    return _finish(pd.DataFrame(rows), table1_columns())


def build_table2(entries: Sequence[dict], all_negative: dict | None = None) -> pd.DataFrame:
    """``entries``: ``{"summary": path, "metrics": [per-seed paths], "system", "model", "method",
    "dataset", "source"}``; ``all_negative``: the same for the sanity row answering "negative"
    for every image (its Accuracy is the probes' AllNegativeAccuracy). When a ``random_init``
    entry is present, every other probe row gets its AUC difference to it (paired bootstrap)."""
    rows = [dict(r) for r in REPORTED_TABLE2]
    reference = next((e for e in entries if e.get("system") == "random_init"), None)
    for entry in entries:
        summary = json.loads(Path(entry["summary"]).read_text())
        row = {k: entry[k] for k in ("model", "method", "dataset", "source")} | _row_from_summary(summary, TABLE2_METRICS)
        if reference is not None and entry is not reference:
            diff = paired_difference(entry["metrics"], reference["metrics"], "AUC")
            row |= {PAIRED_AUC: diff["value"], f"{PAIRED_AUC}_ci_low": diff["ci_low"],
                    f"{PAIRED_AUC}_ci_high": diff["ci_high"]}
        rows.append(row)
    if all_negative:
        summary = json.loads(Path(all_negative["summary"]).read_text())
        stats = _row_from_summary(summary, ["AllNegativeAccuracy"])
        rows.append({k: all_negative[k] for k in ("model", "method", "dataset", "source")} | {
            "AUC": NAN, "Accuracy": stats["AllNegativeAccuracy"],
            "Accuracy_std": stats["AllNegativeAccuracy_std"],
            "Accuracy_ci_low": stats["AllNegativeAccuracy_ci_low"],
            "Accuracy_ci_high": stats["AllNegativeAccuracy_ci_high"],
            "AllNegativeAccuracy": stats["AllNegativeAccuracy"], "n_seeds": stats["n_seeds"]})
    return _finish(pd.DataFrame(rows), table2_columns())


def _finish(frame: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    bad = set(frame["source"]) - set(SOURCES)
    if bad:
        raise ValueError(f"unknown source(s) {sorted(bad)}; expected {SOURCES}")
    for col in columns:
        if col not in frame:
            frame[col] = NAN
    frame = frame[columns]
    numeric = [c for c in columns if c not in ("model", "method", "dataset", "source", "n_seeds")]
    frame[numeric] = frame[numeric].astype(float).round(6)
    frame["n_seeds"] = frame["n_seeds"].astype("Int64")
    return frame


def _cell(row: pd.Series, metric: str) -> str:
    value = row[metric]
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    text = f"{value:.3f}"
    if row["source"] != "reported":
        if not pd.isna(row.get(f"{metric}_std")) and (row.get("n_seeds") or 0) > 1:
            text += f" ± {row[f'{metric}_std']:.3f}"
        if not pd.isna(row.get(f"{metric}_ci_low")):
            text += f" [{row[f'{metric}_ci_low']:.3f}, {row[f'{metric}_ci_high']:.3f}]"
    return text


def to_markdown(frame: pd.DataFrame, keys: Sequence[str], metrics: Sequence[str], title: str) -> str:
    header = [*keys, *metrics, "source", "seeds"]
    lines = [f"# {title}", "",
             "Reproduced and scored cells: mean over training seeds (± std when several) "
             "[95% bootstrap CI]; reported cells: the paper's numbers.", "",
             "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for _, row in frame.iterrows():
        seeds = "" if row["source"] == "reported" or pd.isna(row["n_seeds"]) else str(row["n_seeds"])
        cells = [str(row[k]) for k in keys] + [_cell(row, m) for m in metrics] + [row["source"], seeds]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def write_table(frame: pd.DataFrame, csv_path, md_path, keys, metrics, title) -> None:
    Path(csv_path).parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(csv_path, index=False)
    Path(md_path).write_text(to_markdown(frame, keys, metrics, title))
