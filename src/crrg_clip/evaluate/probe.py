"""Score one RSNA linear probe's test predictions into a metrics JSON."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from .. import provenance as prov
from .bootstrap import ids_fingerprint
from .classification import probe_metrics
from .predictions import read_parquet, validate_probe


def evaluate_probe(
    *,
    encoder: str,
    seed: int,
    predictions_path: str,
    rsna_path: str,
    resamples: int,
    bootstrap_seed: int,
    confidence: float = 0.95,
    model_dirs: Sequence[str] = (),
    upstream: Sequence[str] = (),
    command: str | None = None,
) -> dict:
    rsna = pd.read_parquet(rsna_path)
    test = rsna[rsna["split"] == "test"]
    predictions = validate_probe(read_parquet(predictions_path), test, predictions_path)
    result = probe_metrics(predictions["label"].to_numpy(), predictions["prob"].to_numpy(),
                           resamples, bootstrap_seed, confidence)
    files = [prov.file_record(predictions_path, "predictions"), prov.file_record(rsna_path, "data")]
    for folder in model_dirs:
        files += prov.model_record(folder)
    files += prov.existing_records(upstream, "upstream")
    return {
        "system": encoder, "kind": "probe", "seed": seed,
        "metrics": result["metrics"], "roc": result["roc"],
        "n": result["n"], "n_positive": result["n_positive"], "threshold": result["threshold"],
        "bootstrap": {"resamples": resamples, "seed": bootstrap_seed, "confidence": confidence,
                      "unit": "test image", "ids_sha256": ids_fingerprint(predictions["patientId"].astype(str).tolist()),
                      "replicates": result["replicates"]},
        "command": command,
        "provenance": {"files": files, "environment": prov.environment(),
                       "code_version": prov.code_version()},
    }
