"""Score one report-generation system (ours, a baseline or an external one) into a metrics
JSON: NLG metrics with bootstrap CIs, region metrics when region predictions exist, and
the provenance of every input."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from .. import provenance as prov
from ..regions import NUM_REGIONS
from .bootstrap import bootstrap_plan, with_ci
from .chexpert_labeler import default_labeler
from .clinical_efficacy import score_reports
from .nlg import NLG_METRICS, NLGEvaluator
from .predictions import (
    read_parquet, read_reports_csv, validate_region_predictions, validate_reports,
)
from .region_metrics import region_finding_metrics, region_metrics


def split_findings(images: pd.DataFrame, splits: pd.DataFrame, split: str) -> pd.DataFrame:
    """``dicom_id, findings`` of one split of a subsample, images with FINDINGS only, sorted."""
    ids = splits.loc[splits["split"] == split, "dicom_id"].astype(str)
    frame = images.assign(dicom_id=images["dicom_id"].astype(str))
    frame = frame[frame["dicom_id"].isin(set(ids))]
    frame = frame[frame["has_findings"].astype(bool) & (frame["findings"].astype(str).str.strip() != "")]
    return frame[["dicom_id", "findings"]].sort_values("dicom_id").reset_index(drop=True)


def make_evaluator(images: pd.DataFrame, splits: pd.DataFrame, tokenization: str,
                   cider_df: str = "validation") -> NLGEvaluator:
    return NLGEvaluator(
        tokenization,
        validation_references=split_findings(images, splits, "valid")["findings"].tolist(),
        training_references=split_findings(images, splits, "train")["findings"].tolist(),
        cider_df=cider_df,
    )


def patients_of(images: pd.DataFrame, ids: Sequence[str]) -> list[str]:
    """Each test image's patient (``subject_id``), the unit of the patient bootstrap."""
    if "subject_id" not in images:
        raise ValueError("images.parquet has no subject_id: the patient bootstrap cannot group images")
    subject = dict(zip(images["dicom_id"].astype(str), images["subject_id"].astype(str)))
    return [subject[str(i)] for i in ids]


def load_system_reports(path: str | Path, test_ids: Sequence[str], allow_empty: bool = False) -> pd.DataFrame:
    path = Path(path)
    frame = read_reports_csv(path) if path.suffix == ".csv" else read_parquet(path)
    return validate_reports(frame, test_ids, path, allow_empty=allow_empty)


def evaluate_rrg_system(
    *,
    system: str,
    kind: str,
    seed: int,
    reports_path: str,
    images_path: str,
    split_path: str,
    tokenization: str,
    resamples: int,
    bootstrap_seed: int,
    confidence: float = 0.95,
    bootstrap_unit: str = "patient",
    cider_df: str = "validation",
    predictions_path: str | None = None,
    regions_path: str | None = None,
    model_dirs: Sequence[str] = (),
    upstream: Sequence[str] = (),
    command: str | None = None,
    evaluator: NLGEvaluator | None = None,
    labelers: Sequence = (),
) -> dict:
    """The metrics document of one system and seed (see FILES.md, Evaluation).

    ``labelers``: CheXpert labelers for the clinical-efficacy metrics (default: the
    rule-based one); the first names ``CE_*``, a second (CheXbert) ``CE_*_chexbert``."""
    images = pd.read_parquet(images_path)
    splits = pd.read_parquet(split_path)
    test = split_findings(images, splits, "test")
    reports = load_system_reports(reports_path, test["dicom_id"].tolist(), allow_empty=kind != "external")
    merged = test.merge(reports, on="dicom_id", how="left", validate="1:1")
    mismatches = 0
    if "reference" in merged:
        mismatches = int((merged["reference"].astype(str).str.split().str.join(" ")
                          != merged["findings"].astype(str).str.split().str.join(" ")).sum())
    evaluator = evaluator or make_evaluator(images, splits, tokenization, cider_df)
    ids = merged["dicom_id"].tolist()
    scores = evaluator.score(ids, merged["report"].tolist(), merged["findings"].tolist())
    point = evaluator.point(scores)
    groups = patients_of(images, ids) if bootstrap_unit == "patient" else None
    indices, resampling = bootstrap_plan(ids, groups, bootstrap_unit, resamples, bootstrap_seed)
    replicates = evaluator.replicates(scores, indices)
    doc = {
        "system": system,
        "kind": kind,
        "seed": seed,
        "n_reports": len(ids),
        "tokenization": tokenization,
        "cider_df": evaluator.cider_df,
        "reference_mismatches": mismatches,
        "empty_reports": int((merged["report"].astype(str).str.strip() == "").sum()),
        "empty_after_tokenization": scores.empty_after_tokenization,
        "metrics": {m: with_ci(point[m], replicates[m], confidence) for m in NLG_METRICS},
        "per_report": {
            "dicom_id": ids,
            "ROUGEL": scores.rouge.tolist(),
            "CIDER": scores.cider.tolist(),
            "CIDER_paper_code": scores.cider_paper_code.tolist(),
            "TFIDF": scores.tfidf.tolist(),
            "METEOR": scores.meteor_per_report,
        },
        "bootstrap": {
            **resampling, "confidence": confidence,
            "replicates": {m: np.asarray(v).tolist() for m, v in replicates.items()},
        },
        "region": None,
        "command": command,
    }
    doc["clinical_efficacy"] = {}
    generated, reference = merged["report"].tolist(), merged["findings"].tolist()
    for position, labeler in enumerate(labelers or [default_labeler()]):
        suffix = "" if position == 0 else f"_{labeler.name.lower()}"
        block = score_reports(labeler, generated, reference, indices, confidence, suffix)
        doc["metrics"].update(block["metrics"])
        doc["bootstrap"]["replicates"].update(block["replicates"])
        doc["per_report"].update(block["per_report"])
        doc["clinical_efficacy"][labeler.name] = {"metrics_suffix": suffix,
                                                  "per_observation": block["per_observation"]}
    files = [
        prov.file_record(reports_path, "predictions"),
        prov.file_record(images_path, "data"),
        prov.file_record(split_path, "split"),
    ]
    if predictions_path:
        gt = pd.read_parquet(regions_path)
        regions = validate_region_predictions(
            read_parquet(predictions_path), ids, NUM_REGIONS, predictions_path
        )
        doc["region"] = region_metrics(regions, gt, ids, indices, confidence)
        doc["region"]["findings"] = region_finding_metrics(regions, labelers[0] if labelers else default_labeler())
        files += [prov.file_record(predictions_path, "predictions"),
                  prov.file_record(regions_path, "data")]
    for folder in model_dirs:
        files += prov.model_record(folder)
    files += prov.existing_records(upstream, "upstream")
    doc["provenance"] = {"files": files, "environment": prov.environment(),
                         "code_version": prov.code_version()}
    return doc


def write_json(doc: dict, path: str | Path) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc, indent=1, allow_nan=True) + "\n")
