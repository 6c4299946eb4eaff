"""Percentile bootstrap over test items: shared resamples and confidence intervals.

A resample is a 1-D array of item indices (one per replicate, a ``list`` of them). With
``unit: image`` every replicate draws the N items with replacement; with ``unit: patient``
(a cluster bootstrap) it draws the P patients with replacement and takes all the images of
each patient drawn, so replicates differ in size. MIMIC patients have several studies
whose scores are correlated: resampling images would treat them as independent and give
too narrow an interval.

The resamples are a function of (ordered ids, their patients, unit, resamples, seed) only,
so every system and every training seed evaluated on one test set is resampled
identically (paired bootstrap): replicate ``r`` of two metrics files refers to the same
resample and can be averaged across seeds. ``bootstrap_plan`` returns the record that
proves it (unit and fingerprints of the ids and of their grouping).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence

import numpy as np

UNITS = ("patient", "image")


def bootstrap_indices(n: int, resamples: int, seed: int,
                      groups: Sequence | None = None) -> list[np.ndarray]:
    """``resamples`` index arrays, deterministic per seed.

    ``groups`` (one patient per item, in item order) turns on the cluster bootstrap;
    without it each replicate is N item indices drawn with replacement, the very draws of
    ``rng.integers(0, n, (resamples, n))`` (so image-unit numbers never change).
    """
    if n < 1:
        raise ValueError("bootstrap needs at least one item")
    if resamples < 1:
        raise ValueError("bootstrap needs at least one resample")
    rng = np.random.default_rng(seed)
    if groups is None:
        return list(rng.integers(0, n, size=(resamples, n), dtype=np.int64))  # R x (N,)
    members, starts, sizes = _clusters(groups, n)
    n_groups = len(sizes)
    drawn = rng.integers(0, n_groups, size=(resamples, n_groups), dtype=np.int64).ravel()  # (R*P,)
    # vectorised gather of every drawn patient's images: position k of the flat output
    # belongs to draw j = repeat(arange, sizes[drawn]) and is image starts[j] + offset
    lengths = sizes[drawn]
    ends = np.cumsum(lengths)
    offsets = np.arange(ends[-1]) - np.repeat(ends - lengths, lengths)
    flat = members[np.repeat(starts[drawn], lengths) + offsets]
    row_ends = ends[n_groups - 1 :: n_groups]  # end of each replicate in ``flat``
    return np.split(flat, row_ends[:-1])


def _clusters(groups: Sequence, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Item indices grouped by patient (patients in order of first appearance, so one item
    per patient gives exactly the image bootstrap), each patient's start and size."""
    groups = np.asarray([str(g) for g in groups])
    if len(groups) != n:
        raise ValueError(f"bootstrap groups: {len(groups)} patient ids for {n} items")
    _, first, inverse = np.unique(groups, return_index=True, return_inverse=True)
    rank = np.argsort(np.argsort(first, kind="stable"), kind="stable")[inverse.ravel()]  # patient order
    members = np.argsort(rank, kind="stable").astype(np.int64)  # items, patient by patient
    sizes = np.bincount(rank).astype(np.int64)
    starts = np.cumsum(sizes) - sizes
    return members, starts, sizes


def bootstrap_plan(ids: Sequence[str], groups: Sequence | None, unit: str, resamples: int,
                   seed: int) -> tuple[list[np.ndarray], dict]:
    """The resamples of one test set and the record pairing them across metrics files.

    ``groups``: each id's patient (needed for ``unit: patient``). The record holds the unit,
    resamples, seed, the number of resampled units and sha256 of the ordered ids and of
    their grouping (``aggregate`` refuses to combine files whose records differ).
    """
    if unit not in UNITS:
        raise ValueError(f"unknown bootstrap unit {unit!r}; expected one of {UNITS}")
    ids = [str(i) for i in ids]
    if unit == "patient":
        if groups is None:
            raise ValueError("bootstrap unit 'patient' needs each test item's patient id")
        groups = [str(g) for g in groups]
    else:
        groups = ids  # every image its own unit
    indices = bootstrap_indices(len(ids), resamples, seed, groups if unit == "patient" else None)
    record = {
        "unit": unit, "resamples": resamples, "seed": seed, "n_units": len(set(groups)),
        "ids_sha256": ids_fingerprint(ids), "groups_sha256": groups_fingerprint(ids, groups),
    }
    return indices, record


def percentile_ci(replicates: Sequence[float], confidence: float = 0.95) -> tuple[float, float]:
    """The equal-tailed percentile interval of the replicate values (NaNs ignored)."""
    values = np.asarray(replicates, dtype=float)
    values = values[~np.isnan(values)]
    if values.size == 0:
        return float("nan"), float("nan")
    alpha = (1.0 - confidence) / 2.0
    low, high = np.quantile(values, [alpha, 1.0 - alpha])
    return float(low), float(high)


def _matrix(indices: Sequence[np.ndarray]) -> np.ndarray | None:
    """(R, N) when every replicate has the same size (the image bootstrap), else None."""
    if isinstance(indices, np.ndarray) and indices.ndim == 2:
        return indices
    sizes = {len(row) for row in indices}
    return np.stack(indices) if len(sizes) == 1 else None


def sum_replicates(values: np.ndarray, indices: Sequence[np.ndarray]) -> np.ndarray:
    """Per-replicate sums of per-item rows ``values`` (N, ...) -> (R, ...)."""
    values = np.asarray(values)
    matrix = _matrix(indices)
    if matrix is not None:
        return values[matrix].sum(axis=1)
    flat = np.concatenate(indices)
    starts = np.cumsum([0, *(len(row) for row in indices[:-1])])
    return np.add.reduceat(values[flat], starts, axis=0)


def mean_replicates(per_item: np.ndarray, indices: Sequence[np.ndarray]) -> np.ndarray:
    """Bootstrap replicates of a mean-type metric from its per-item scores."""
    per_item = np.asarray(per_item, dtype=float)  # (N,)
    matrix = _matrix(indices)
    if matrix is not None:
        return per_item[matrix].mean(axis=1)  # (R,), exactly as before replicates could differ in size
    return sum_replicates(per_item, indices) / np.array([len(row) for row in indices], dtype=float)


def statistic_replicates(
    statistic: Callable[[np.ndarray], float], indices: Sequence[np.ndarray]
) -> np.ndarray:
    """Replicates of any statistic computed from a resampled index vector."""
    return np.array([statistic(row) for row in indices], dtype=float)


def ids_fingerprint(ids: Sequence[str]) -> str:
    """sha256 of the ordered item ids a bootstrap resampled (pairs replicates across files)."""
    return hashlib.sha256("\n".join(ids).encode()).hexdigest()


def groups_fingerprint(ids: Sequence[str], groups: Sequence[str]) -> str:
    """sha256 of each ordered id with its resampling unit (its patient, or itself)."""
    return hashlib.sha256("\n".join(f"{i}\t{g}" for i, g in zip(ids, groups)).encode()).hexdigest()


def with_ci(value: float, replicates: np.ndarray, confidence: float) -> dict:
    """Point value, percentile CI, and how many resamples left the metric undefined (NaN,
    e.g. a single-class AUC resample): those are left out of the interval, and counted."""
    low, high = percentile_ci(replicates, confidence)
    dropped = int(np.isnan(np.asarray(replicates, dtype=float)).sum())
    return {"value": float(value), "ci_low": low, "ci_high": high, "dropped_resamples": dropped}
