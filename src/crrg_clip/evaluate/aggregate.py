"""Combine one system's per-seed metrics files: mean and std across training seeds, and a
bootstrap CI of the seed mean (replicate r of every seed is the same resample of the
same test set, so the replicates are averaged across seeds before taking percentiles); and
the paired difference of two systems on the same test set. Both refuse metrics files whose
resamples differ (``PAIRING_KEYS`` of their ``bootstrap`` records: unit, resamples, seed and
fingerprints of the test ids and their grouping)."""

from __future__ import annotations

import json
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..provenance import sha256_file
from .bootstrap import percentile_ci

# What makes replicate r of two metrics files the same resample.
PAIRING_KEYS = ("unit", "resamples", "seed", "ids_sha256", "groups_sha256")


def pairing_key(doc: dict) -> tuple:
    return tuple(doc["bootstrap"].get(k) for k in PAIRING_KEYS)


def summarize(metrics_paths: Sequence[str | Path]) -> dict:
    docs = [json.loads(Path(p).read_text()) for p in metrics_paths]
    if not docs:
        raise ValueError("nothing to summarize")
    first = docs[0]
    for path, doc in zip(metrics_paths, docs):
        if doc["system"] != first["system"]:
            raise ValueError(f"{path}: system {doc['system']} differs from {first['system']}")
        if pairing_key(doc) != pairing_key(first):
            raise ValueError(f"{path}: bootstrap (unit, resamples, seed) or test ids or their grouping "
                             f"differ from {metrics_paths[0]}; seeds can only be combined on the same "
                             "resamples of the same test set")
    confidence = first["bootstrap"].get("confidence", 0.95)
    metrics = {}
    for name in first["metrics"]:
        values = np.array([d["metrics"][name]["value"] for d in docs], dtype=float)
        replicates = _seed_mean_replicates(docs, name)
        low, high = percentile_ci(replicates, confidence)
        metrics[name] = {
            "mean": float(np.mean(values)),
            "std": float(np.std(values, ddof=1)) if len(values) > 1 else 0.0,
            "ci_low": low, "ci_high": high,
            "dropped_resamples": int(np.isnan(replicates).sum()),  # undefined in every seed
            "per_seed": values.tolist(),
        }
    out = {
        "system": first["system"], "kind": first["kind"],
        "seeds": [d["seed"] for d in docs], "n_seeds": len(docs),
        "metrics": metrics,
        "bootstrap": {k: first["bootstrap"].get(k) for k in (*PAIRING_KEYS, "confidence")},
        "metrics_files": [str(p) for p in metrics_paths],
        # ties the summary to the exact per-seed files it averaged (provenance verifies them)
        "metrics_sha256": {str(p): sha256_file(p) for p in metrics_paths},
    }
    for key in ("n_reports", "n", "n_positive", "tokenization"):
        if key in first:
            out[key] = first[key]
    if first.get("region"):
        out["region"] = {
            name: {"mean": float(np.mean([d["region"]["overall"][name]["value"] for d in docs])),
                   "per_seed": [d["region"]["overall"][name]["value"] for d in docs]}
            for name in first["region"]["overall"]
        }
    return out


def _seed_mean_replicates(docs: Sequence[dict], metric: str) -> np.ndarray:
    reps = np.array([d["bootstrap"]["replicates"][metric] for d in docs], dtype=float)  # (S, R)
    if len(docs) == 1:
        return reps[0]  # (R,)
    with warnings.catch_warnings():  # a resample undefined in every seed stays NaN (and is counted)
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmean(reps, axis=0)  # (R,)


def paired_difference(metrics_paths: Sequence[str | Path], reference_paths: Sequence[str | Path],
                      metric: str) -> dict:
    """``metric`` of one system minus a reference system's, with a paired bootstrap CI.

    Both systems' metrics files must come from the same bootstrap (resamples, seed) over the
    same ordered test ids, so replicate r is the same resample for both: the CI of the
    difference of the seed-mean replicates is then far tighter than comparing two CIs.
    """
    docs = [json.loads(Path(p).read_text()) for p in metrics_paths]
    refs = [json.loads(Path(p).read_text()) for p in reference_paths]
    if not docs or not refs:
        raise ValueError("paired_difference needs metrics files for both systems")
    for path, doc in [*zip(metrics_paths, docs), *zip(reference_paths, refs)]:
        if pairing_key(doc) != pairing_key(docs[0]) or doc["bootstrap"].get("ids_sha256") is None:
            raise ValueError(f"{path}: bootstrap or test ids differ from {metrics_paths[0]} (unit, "
                             "resamples, seed, ids or their grouping; or the ids are not recorded); a paired "
                             "difference needs the same resamples of the same test set")
    point = float(np.mean([d["metrics"][metric]["value"] for d in docs])
                  - np.mean([d["metrics"][metric]["value"] for d in refs]))
    low, high = percentile_ci(_seed_mean_replicates(docs, metric) - _seed_mean_replicates(refs, metric),
                              docs[0]["bootstrap"].get("confidence", 0.95))
    return {"value": point, "ci_low": low, "ci_high": high}
