"""Percentile bootstrap over test items: shared resample indices and confidence intervals.

The same ``(n, resamples, seed)`` always gives the same index matrix, so every system and
every training seed evaluated on one test set is resampled identically (paired bootstrap):
replicate ``r`` of two metrics files refers to the same resample and can be averaged
across seeds.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence

import numpy as np


def bootstrap_indices(n: int, resamples: int, seed: int) -> np.ndarray:
    """(resamples, n) int64 indices drawn with replacement, deterministic per seed."""
    if n < 1:
        raise ValueError("bootstrap needs at least one item")
    if resamples < 1:
        raise ValueError("bootstrap needs at least one resample")
    rng = np.random.default_rng(seed)
    return rng.integers(0, n, size=(resamples, n), dtype=np.int64)  # (R, N)


def percentile_ci(replicates: Sequence[float], confidence: float = 0.95) -> tuple[float, float]:
    """The equal-tailed percentile interval of the replicate values (NaNs ignored)."""
    values = np.asarray(replicates, dtype=float)
    values = values[~np.isnan(values)]
    if values.size == 0:
        return float("nan"), float("nan")
    alpha = (1.0 - confidence) / 2.0
    low, high = np.quantile(values, [alpha, 1.0 - alpha])
    return float(low), float(high)


def mean_replicates(per_item: np.ndarray, indices: np.ndarray) -> np.ndarray:
    """Bootstrap replicates of a mean-type metric from its per-item scores."""
    per_item = np.asarray(per_item, dtype=float)  # (N,)
    return per_item[indices].mean(axis=1)  # (R,)


def statistic_replicates(
    statistic: Callable[[np.ndarray], float], indices: np.ndarray
) -> np.ndarray:
    """Replicates of any statistic computed from a resampled index vector."""
    return np.array([statistic(row) for row in indices], dtype=float)


def ids_fingerprint(ids: Sequence[str]) -> str:
    """sha256 of the ordered item ids a bootstrap resampled (pairs replicates across files)."""
    return hashlib.sha256("\n".join(ids).encode()).hexdigest()


def with_ci(value: float, replicates: np.ndarray, confidence: float) -> dict:
    low, high = percentile_ci(replicates, confidence)
    return {"value": float(value), "ci_low": low, "ci_high": high}
