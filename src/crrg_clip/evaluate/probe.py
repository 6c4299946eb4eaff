"""Score one RSNA linear probe's test predictions into a metrics JSON."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from .. import provenance as prov
from .bootstrap import bootstrap_plan
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
    bootstrap_unit: str = "patient",
    model_dirs: Sequence[str] = (),
    upstream: Sequence[str] = (),
    command: str | None = None,
) -> dict:
    rsna = pd.read_parquet(rsna_path)
    test = rsna[rsna["split"] == "test"]
    predictions = validate_probe(read_parquet(predictions_path), test, predictions_path)
    ids = predictions["patientId"].astype(str).tolist()
    # RSNA: one image per patientId, so each image is its own patient (both units agree)
    indices, resampling = bootstrap_plan(ids, ids, bootstrap_unit, resamples, bootstrap_seed)
    result = probe_metrics(predictions["label"].to_numpy(), predictions["prob"].to_numpy(),
                           indices, confidence)
    files = [prov.file_record(predictions_path, "predictions"), prov.file_record(rsna_path, "data")]
    for folder in model_dirs:
        files += prov.model_record(folder)
    files += prov.existing_records(upstream, "upstream")
    return {
        "system": encoder, "kind": "probe", "seed": seed,
        "metrics": result["metrics"], "roc": result["roc"],
        "n": result["n"], "n_positive": result["n_positive"], "threshold": result["threshold"],
        "bootstrap": {**resampling, "confidence": confidence, "replicates": result["replicates"]},
        "command": command,
        "provenance": {"files": files, "environment": prov.environment(),
                       "code_version": prov.code_version()},
    }
