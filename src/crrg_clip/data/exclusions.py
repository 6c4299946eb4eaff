"""Exclusion bookkeeping: every dropped input item is one ``dataset, item_id, reason`` row.

Each workflow step writes its own part (``results/qc/parts/{step}.tsv``) plus a kept-count
file (``{step}.kept.tsv``: ``dataset, count``); ``qc_summary`` merges them, writes the
summary and stops the run when a dataset loses too much.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

COLUMNS = ["dataset", "item_id", "reason"]
SUMMARY_COLUMNS = ["dataset", "status", "reason", "count"]
KEPT_COLUMNS = ["dataset", "count"]

# Exclusions that follow from the protocol rather than from faulty data: listed in
# exclusions.tsv and summary.tsv, but not counted against qc.max_excluded_fraction.
BY_DESIGN_REASONS: tuple[str, ...] = ("over_split_cap",)


class ExclusionThresholdError(RuntimeError):
    """A dataset lost more than the allowed fraction of its items."""


@dataclass
class ExclusionLog:
    """Collects ``(dataset, item_id, reason)`` rows."""

    rows: list[tuple[str, str, str]] = field(default_factory=list)

    def add(self, dataset: str, item_id: object, reason: str) -> None:
        self.rows.append((str(dataset), str(item_id), str(reason)))

    def extend(self, other: "ExclusionLog | Iterable[tuple[str, str, str]]") -> None:
        rows = other.rows if isinstance(other, ExclusionLog) else other
        for dataset, item_id, reason in rows:
            self.add(dataset, item_id, reason)

    def __len__(self) -> int:
        return len(self.rows)

    def to_frame(self) -> pd.DataFrame:
        return pd.DataFrame(self.rows, columns=COLUMNS, dtype=str)

    def write(self, path: Path | str) -> None:
        write_exclusions(self.to_frame(), path)

    @classmethod
    def read(cls, path: Path | str) -> "ExclusionLog":
        frame = read_exclusions(path)
        return cls(list(frame.itertuples(index=False, name=None)))


def write_exclusions(frame: pd.DataFrame, path: Path | str) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    frame = frame.reindex(columns=COLUMNS)
    frame.sort_values(COLUMNS, kind="stable").to_csv(path, sep="\t", index=False)


def read_exclusions(path: Path | str) -> pd.DataFrame:
    frame = pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False)
    missing = set(COLUMNS) - set(frame.columns)
    if missing:
        raise ValueError(f"{path}: not an exclusion table, missing column(s) {sorted(missing)}")
    return frame[COLUMNS]


def write_kept(counts: Mapping[str, int], path: Path | str) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    frame = pd.DataFrame(sorted(counts.items()), columns=KEPT_COLUMNS)
    frame.to_csv(path, sep="\t", index=False)


def read_kept(path: Path | str) -> dict[str, int]:
    frame = pd.read_csv(path, sep="\t", dtype={"dataset": str, "count": "int64"})
    return dict(zip(frame["dataset"], frame["count"]))


def merge_exclusions(paths: Iterable[Path | str]) -> pd.DataFrame:
    """Concatenate exclusion parts; an item excluded twice for the same reason counts once."""
    frames = [read_exclusions(p) for p in paths]
    merged = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=COLUMNS)
    return merged.drop_duplicates().sort_values(COLUMNS, kind="stable").reset_index(drop=True)


def merge_kept(paths: Iterable[Path | str]) -> dict[str, int]:
    total: dict[str, int] = {}
    for path in paths:
        for dataset, count in read_kept(path).items():
            total[dataset] = total.get(dataset, 0) + int(count)
    return total


def summarise(exclusions: pd.DataFrame, kept: Mapping[str, int]) -> pd.DataFrame:
    """``dataset, status, reason, count``: one ``kept`` row per dataset, one per exclusion reason."""
    rows = [(d, "kept", "ok", int(n)) for d, n in kept.items()]
    if len(exclusions):
        counts = exclusions.groupby(["dataset", "reason"]).size()
        rows += [(d, "excluded", r, int(n)) for (d, r), n in counts.items()]
    out = pd.DataFrame(rows, columns=SUMMARY_COLUMNS)
    return out.sort_values(["dataset", "status", "reason"], ascending=[True, False, True]).reset_index(drop=True)


def excluded_fractions(
    summary: pd.DataFrame, ignore_reasons: Iterable[str] = BY_DESIGN_REASONS
) -> dict[str, float]:
    """Per dataset: excluded items (not counting ``ignore_reasons``) / all items."""
    ignore = set(ignore_reasons)
    fractions = {}
    for dataset, group in summary.groupby("dataset"):
        total = int(group["count"].sum())
        bad = int(group.loc[(group["status"] == "excluded") & ~group["reason"].isin(ignore), "count"].sum())
        fractions[dataset] = bad / total if total else 0.0
    return fractions


def check_threshold(
    summary: pd.DataFrame, max_fraction: float, ignore_reasons: Iterable[str] = BY_DESIGN_REASONS
) -> None:
    """Raise ExclusionThresholdError naming every dataset whose excluded fraction > max_fraction."""
    fractions = excluded_fractions(summary, ignore_reasons)
    over = {d: f for d, f in fractions.items() if f > max_fraction}
    if over:
        lines = []
        for dataset, fraction in sorted(over.items()):
            group = summary[(summary["dataset"] == dataset) & (summary["status"] == "excluded")]
            top = ", ".join(f"{r}={n}" for r, n in zip(group["reason"], group["count"]))
            lines.append(f"{dataset}: {fraction:.1%} of items excluded ({top})")
        raise ExclusionThresholdError(
            f"excluded fraction above qc.max_excluded_fraction = {max_fraction}:\n  "
            + "\n  ".join(lines)
            + "\nSee results/qc/exclusions.tsv; fix the data paths or raise the threshold."
        )


def backtranslation_summary(summary: pd.DataFrame, paths: Iterable[Path | str]) -> pd.DataFrame:
    """Append back-translation outcomes (``backtranslation_{text}.tsv``: reason, count, unit)
    as summary rows: dataset ``backtranslation-{text}``, status ``ok`` or ``fallback``, the
    reason suffixed with the unit counted (``ok (sentences)``)."""
    rows = []
    for path in paths:
        text = Path(path).stem.removeprefix("backtranslation_")
        counts = pd.read_csv(path, sep="\t")
        if list(counts.columns) != ["reason", "count", "unit"]:
            raise ValueError(f"{path}: expected columns reason, count, unit; got {list(counts.columns)}")
        for reason, count, unit in zip(counts["reason"], counts["count"], counts["unit"]):
            status = "ok" if reason == "ok" else "fallback"
            rows.append({"dataset": f"backtranslation-{text}", "status": status,
                         "reason": f"{reason} ({unit}s)", "count": int(count)})
    return pd.concat([summary, pd.DataFrame(rows, columns=summary.columns)], ignore_index=True)


def _left_out_count(value) -> int:
    """A run.json left-out value: ``{"count", "ids"}``, an id list or a bare count."""
    if isinstance(value, Mapping):
        return int(value["count"])
    if isinstance(value, (list, tuple)):
        return len(value)
    return int(value)


def rrg_left_out_summary(summary: pd.DataFrame, run_paths: Iterable[Path | str]) -> pd.DataFrame:
    """Append what each RRG stage left out (``summary.left_out`` of its run.json, per split) as
    rows: dataset ``rrg-{variant}-seed{seed}-{stage}``, status ``left_out``, reason ``{reason}
    ({split})``. ``run_paths``: ``results/rrg/{variant}/seed{seed}/{stage}/run.json`` or the
    stage folder itself (the generator's output is a folder). The ids stay in the run.json."""
    import json

    rows = []
    for path in run_paths:
        path = Path(path)
        path = path / "run.json" if path.is_dir() else path
        stage, seed, variant = path.parent.name, path.parent.parent.name, path.parent.parent.parent.name
        left_out = json.loads(path.read_text()).get("summary", {}).get("left_out")
        if left_out is None:
            raise ValueError(f"{path}: no summary.left_out (written before stages counted what they leave out?)")
        for split, reasons in left_out.items():
            for reason, value in reasons.items():
                rows.append({"dataset": f"rrg-{variant}-{seed}-{stage}", "status": "left_out",
                             "reason": f"{reason} ({split})", "count": _left_out_count(value)})
    return pd.concat([summary, pd.DataFrame(rows, columns=summary.columns)], ignore_index=True)
