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

from .provenance import write_table_provenance
from .systems import PROBE_ROWS, Systems, rrg_row_name


TABLE1_METRICS = ("BLEU1", "BLEU2", "BLEU3", "BLEU4", "METEOR", "ROUGEL", "CIDER", "CIDER_paper_code", "TFIDF",
                  "CE_P_mic5", "CE_R_mic5", "CE_F1_mic5", "CE_F1_ex14")
# Paired bootstrap differences computed by the evaluation rules (rule compare_rrg / compare_probe)
TABLE1_COMPARISONS = tuple(f"{m}_vs_most_frequent" for m in ("BLEU4", "METEOR", "ROUGEL", "CE_F1_mic5"))
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


def _comparison_columns(names: Sequence[str]) -> list[str]:
    return [c for n in names for c in (n, f"{n}_ci_low", f"{n}_ci_high")]


def table1_columns() -> list[str]:
    return ["model", "dataset", *TABLE1_METRICS, "source", *_metric_columns(TABLE1_METRICS),
            *_comparison_columns(TABLE1_COMPARISONS)]


PAIRED_AUC = "AUC_vs_random_init"  # this probe's AUC minus the random-init probe's (paired bootstrap)


def table2_columns() -> list[str]:
    return ["model", "method", "dataset", "AUC", "Accuracy", "source", "AllNegativeAccuracy",
            *_metric_columns(TABLE2_METRICS), *_comparison_columns([PAIRED_AUC])]


def comparison_values(path: str | Path | None) -> dict[str, float]:
    """``{name, name_ci_low, name_ci_high}`` of every difference in a comparison document."""
    if not path:
        return {}
    doc = json.loads(Path(path).read_text())
    out = {}
    for name, diff in doc["differences"].items():
        out |= {name: diff["value"], f"{name}_ci_low": diff["ci_low"], f"{name}_ci_high": diff["ci_high"]}
    return out


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
    """``entries``: ``{"summary": path, "model", "dataset", "source"}`` per row of ours, and
    ``comparison``: the row's paired comparison with the most-frequent baseline (or None)."""
    rows = [dict(r) for r in REPORTED_TABLE1]
    for entry in entries:
        summary = json.loads(Path(entry["summary"]).read_text())
        rows.append({"model": entry["model"], "dataset": entry["dataset"], "source": entry["source"],
                     **_row_from_summary(summary, TABLE1_METRICS), **comparison_values(entry.get("comparison"))})
    return _finish(pd.DataFrame(rows), table1_columns())


def build_table2(entries: Sequence[dict], all_negative: dict | None = None) -> pd.DataFrame:
    """``entries``: ``{"summary": path, "metrics": [per-seed paths], "system", "model", "method",
    "dataset", "source"}``; ``all_negative``: the same for the sanity row answering "negative"
    for every image (its Accuracy is the probes' AllNegativeAccuracy). ``comparison``: the
    row's paired AUC difference to the random-init probe, computed by rule compare_probe."""
    rows = [dict(r) for r in REPORTED_TABLE2]
    for entry in entries:
        summary = json.loads(Path(entry["summary"]).read_text())
        rows.append({k: entry[k] for k in ("model", "method", "dataset", "source")}
                    | _row_from_summary(summary, TABLE2_METRICS) | comparison_values(entry.get("comparison")))
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


def all_negative_entry(entries: Sequence[dict]) -> dict | None:
    """Table 2's sanity row: "no pneumonia" for every test image. Its accuracy is the probes'
    ``AllNegativeAccuracy`` (the same test set), read from the first probe's summary."""
    if not entries:
        return None
    first = entries[0]
    return {"summary": first["summary"], "metrics": first["metrics"], "system": "all_negative",
            "model": "All-negative", "dataset": first["dataset"], "source": "reproduced",
            "method": "predicts 'no pneumonia' for every image",
            "value_aliases": {"Accuracy": "AllNegativeAccuracy"}}


def table1_notes(test_subsample: str, labelers: Sequence[str]) -> str:
    """The caption lines under Table 1's Markdown."""
    return "\n".join([
        "",
        f"Every reproduced row is generated for and scored on the test split of subsample "
        f"`{test_subsample}` (one test set, one IDF/DF fit), so rows compare like for like. "
        "Reported rows are the paper's numbers on its own data and metric code.",
        f"CE_* (clinical efficacy) columns: CheXpert labels from the {' and the '.join(labelers)} labeler "
        "(docs/CLINICAL_EFFICACY.md); mic-5 = micro P/R/F1 over 5 observations, uncertain counted positive "
        "(Miura et al.); ex-14 = mean per-report F1 over 14 observations, positive only (Nicolson et al.). "
        "A rule-based labeler's numbers are not comparable with published CheXbert numbers.",
        "CIDER: CIDEr-D with document frequencies from our validation split; CIDER_paper_code: the paper "
        "code's scorer (uniform IDF), comparable with its 0.429 / 0.513.",
        "{metric}_vs_most_frequent: the row's metric minus the most-frequent-report baseline's on the same "
        "test images, with a paired bootstrap CI (the same resamples for both systems); a difference is "
        "significant when its CI excludes zero.",
        "",
    ])


def table2_notes() -> str:
    return (f"\n{PAIRED_AUC}: the row's test AUC minus the random-init probe's on the same test images, "
            "with a paired bootstrap CI (the same resamples for both probes), computed by rule compare_probe. "
            "All-negative: the accuracy of answering 'no pneumonia' for every test image.\n")


# --- rows of ours: what each table row is built from (files, names, dataset cell) ----------
def table1_entries(config: dict, systems: Systems) -> list[dict]:
    """One entry per reproduced or scored Table 1 row: its names, summary, per-seed metrics
    and paired comparison files (the rule's inputs) in table order."""
    entries = []
    for system in systems.rrg_systems():
        subsample = systems.training_subsample(system)
        entries.append({
            "system": system,
            "model": rrg_row_name(system),
            "dataset": dataset_label(config["subsamples"].get(subsample), config["data"]["synthetic"], subsample),
            "source": "scored" if systems.kind(system) == "external" else "reproduced",
            "summary": f"results/metrics/rrg/{system}/summary.json",
            "comparison": systems.rrg_comparison(system),
            "metrics": systems.rrg_metrics_files(system),
        })
    return entries


def rsna_dataset_label(config: dict) -> str:
    """Table 2's dataset cell: the probe's RSNA training subset."""
    train_subset = config["rsna"]["train_subset"]
    if config["data"]["synthetic"]:
        return "demo (RSNA)"
    if isinstance(train_subset, float):
        return f"RSNA {train_subset * 100:g}%"
    return f"RSNA {train_subset} training images"


def table2_entries(config: dict, systems: Systems) -> list[dict]:
    """One entry per reproduced Table 2 probe row, in table order."""
    dataset = rsna_dataset_label(config)
    entries = []
    for encoder in systems.probe_encoders():
        model, method = PROBE_ROWS[encoder]
        if encoder in ("random_init", "imagenet_init"):
            # the baselines use the configured image encoder (the demo's is smaller than ResNet-50)
            model = config["rclip"]["image_encoder"].replace("resnet", "ResNet-")
        entries.append({
            "system": encoder, "model": model, "method": method, "dataset": dataset, "source": "reproduced",
            "summary": f"results/metrics/probe/{encoder}/summary.json",
            "comparison": systems.probe_comparison(encoder),
            "metrics": systems.probe_metrics_files(encoder),
        })
    return entries


def comparison_files(entries: Sequence[dict]) -> list[str]:
    return [e["comparison"] for e in entries if e["comparison"]]


def roc_labels(systems: Systems) -> list[str]:
    """The ROC figure's curve labels, one per (encoder, seed) metrics file."""
    return [f"{PROBE_ROWS[e][0]} {PROBE_ROWS[e][1]}" for e in systems.probe_encoders() for _ in systems.seeds]


# --- the table files -----------------------------------------------------------------------
def write_table1(entries: Sequence[dict], csv_path, md_path, provenance_path, *, test_subsample: str,
                 labelers: Sequence[str], config: dict, command: str) -> pd.DataFrame:
    """Table 1's CSV, Markdown (with its notes) and provenance."""
    frame = build_table1(entries)
    columns = [*TABLE1_METRICS, *TABLE1_COMPARISONS]
    write_table(frame, csv_path, md_path, ["model", "dataset"], columns,
                "Table 1: report generation (MIMIC-CXR test split)")
    with open(md_path, "a") as handle:
        handle.write(table1_notes(test_subsample, labelers))
    write_table_provenance(csv_path, md_path, provenance_path, entries, columns, config, command)
    return frame


def write_table2(entries: Sequence[dict], csv_path, md_path, provenance_path, *, config: dict,
                 command: str) -> pd.DataFrame:
    """Table 2's CSV, Markdown (with its notes and the All-negative row) and provenance."""
    all_negative = all_negative_entry(entries)
    frame = build_table2(entries, all_negative)
    write_table(frame, csv_path, md_path, ["model", "method", "dataset"],
                ["AUC", "Accuracy", "AllNegativeAccuracy", PAIRED_AUC],
                "Table 2: RSNA pneumonia classification (linear probe)")
    with open(md_path, "a") as handle:
        handle.write(table2_notes())
    write_table_provenance(csv_path, md_path, provenance_path, [*entries, *([all_negative] if all_negative else [])],
                           [*TABLE2_METRICS, PAIRED_AUC], config, command,
                           label=lambda e: f"{e['model']} / {e['method']}")
    return frame
