"""Paired comparisons of two systems scored on the same test set, as metrics documents.

A comparison is computed by the evaluation rules (never by a table script) and stored with
the hashes of the two systems' per-seed metrics files, so a table cell such as
``BLEU4_vs_most_frequent`` or ``AUC_vs_random_init`` is traceable like any other number.
The difference of the seed means comes with a paired bootstrap CI: both systems' metrics
files hold replicates of the same resamples of the same ordered test ids
(``aggregate.paired_difference`` refuses files where they differ).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from .. import provenance as prov
from .aggregate import paired_difference

KIND = "paired_comparison"


def comparison_name(metric: str, reference_label: str) -> str:
    """The table column of a comparison, e.g. ``BLEU4_vs_most_frequent``."""
    return f"{metric}_vs_{reference_label}"


def compare_systems(*, system: str, reference: str, reference_label: str,
                    metrics_paths: Sequence[str | Path], reference_paths: Sequence[str | Path],
                    metrics: Sequence[str], command: str | None = None) -> dict:
    """``{metric}_vs_{reference_label}`` for each metric: ``value`` (system minus reference,
    seed means), ``ci_low``/``ci_high`` (paired bootstrap) and ``excludes_zero``."""
    if not metrics:
        raise ValueError("compare_systems needs at least one metric")
    docs = {str(p): json.loads(Path(p).read_text()) for p in [*metrics_paths, *reference_paths]}
    first = docs[str(metrics_paths[0])]
    differences = {}
    for metric in metrics:
        missing = [path for path, doc in docs.items() if metric not in doc["metrics"]]
        if missing:
            raise ValueError(f"metric {metric!r} is not in {', '.join(missing)}")
        diff = paired_difference(metrics_paths, reference_paths, metric)
        excludes_zero = bool(diff["ci_low"] > 0 or diff["ci_high"] < 0)
        differences[comparison_name(metric, reference_label)] = {**diff, "excludes_zero": excludes_zero}
    files = [prov.file_record(p, "metrics") for p in metrics_paths]
    files += [prov.file_record(p, "reference_metrics") for p in reference_paths]
    return {
        "kind": KIND,
        "system": system,
        "reference": reference,
        "reference_label": reference_label,
        "bootstrap": {k: first["bootstrap"].get(k) for k in ("resamples", "seed", "confidence", "ids_sha256",
                                                             "unit")},
        "differences": differences,
        "command": command,
        "provenance": {"files": files, "environment": prov.environment(), "code_version": prov.code_version()},
    }
