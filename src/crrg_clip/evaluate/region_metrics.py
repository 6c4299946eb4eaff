"""Region detection and selection metrics from ``predictions_test.parquet``.

IoU is measured in cache pixels against ``results/cache/mimic/regions.parquet``, over the
(image, region) pairs whose ground-truth box is valid; an undetected region counts IoU 0
(``iou``) and is left out of ``iou_detected``. Selection compares ``selected`` with
``has_sentence`` (the region has a reference sentence), leaving out the regions selected only
by the every-image-gets-a-report fallback (``fallback``; counted as ``fallback_regions``). A predicted region without a
ground-truth row has an unknown truth: it is left out of every metric and counted
(``without_ground_truth``), never taken as "no sentence".
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from ..regions import REGIONS
from .bootstrap import with_ci


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise IoU of (N, 4) x1, y1, x2, y2 boxes; 0 where the union is empty."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    width = np.clip(np.minimum(a[:, 2], b[:, 2]) - np.maximum(a[:, 0], b[:, 0]), 0, None)
    height = np.clip(np.minimum(a[:, 3], b[:, 3]) - np.maximum(a[:, 1], b[:, 1]), 0, None)
    inter = width * height
    area_a = np.clip(a[:, 2] - a[:, 0], 0, None) * np.clip(a[:, 3] - a[:, 1], 0, None)
    area_b = np.clip(b[:, 2] - b[:, 0], 0, None) * np.clip(b[:, 3] - b[:, 1], 0, None)
    union = area_a + area_b - inter
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(union > 0, inter / union, 0.0)


def precision_recall_f1(pred: np.ndarray, truth: np.ndarray) -> tuple[float, float, float]:
    pred, truth = np.asarray(pred, bool), np.asarray(truth, bool)
    tp = float(np.sum(pred & truth))
    precision = tp / pred.sum() if pred.sum() else float("nan")
    recall = tp / truth.sum() if truth.sum() else float("nan")
    if precision != precision or recall != recall:
        f1 = float("nan")
    elif precision + recall == 0:
        f1 = 0.0
    else:
        f1 = 2 * precision * recall / (precision + recall)
    return float(precision), float(recall), float(f1)


def join_ground_truth(predictions: pd.DataFrame, ground_truth: pd.DataFrame) -> pd.DataFrame:
    gt = ground_truth[["dicom_id", "region_index", "x1", "y1", "x2", "y2", "box_valid", "has_sentence"]]
    gt = gt.rename(columns={c: f"gt_{c}" for c in ("x1", "y1", "x2", "y2", "box_valid")}).copy()
    gt["dicom_id"] = gt["dicom_id"].astype(str)
    merged = predictions.merge(gt, on=["dicom_id", "region_index"], how="left", validate="1:1",
                               indicator="_gt")
    merged["has_ground_truth"] = merged.pop("_gt").eq("both")
    missing = ~merged["has_ground_truth"]
    merged.loc[missing, "gt_box_valid"] = False
    merged.loc[missing, "has_sentence"] = False  # placeholder; these rows are filtered out
    merged["gt_box_valid"] = merged["gt_box_valid"].astype(bool)
    merged["has_sentence"] = merged["has_sentence"].astype(bool)
    merged["detected"] = merged["detected"].astype(bool)
    merged["selected"] = merged["selected"].astype(bool)
    merged["fallback"] = fallback_flags(merged)
    merged["iou"] = np.where(
        merged["gt_box_valid"] & merged["detected"],
        box_iou(merged[["x1", "y1", "x2", "y2"]].to_numpy(float),
                merged[["gt_x1", "gt_y1", "gt_x2", "gt_y2"]].to_numpy(float)),
        0.0,
    )
    return merged


def fallback_flags(frame: pd.DataFrame) -> pd.Series:
    """``fallback`` as bool; files written before the column existed count no fallback."""
    if "fallback" not in frame.columns:
        return pd.Series(False, index=frame.index)
    return frame["fallback"].fillna(False).astype(bool)


def _overall(frame: pd.DataFrame) -> dict[str, float]:
    valid = frame[frame["gt_box_valid"]]
    # a fallback pick is not the selector's decision: it would count as a selection otherwise
    chosen = frame["selected"] & ~frame["fallback"]
    precision, recall, f1 = precision_recall_f1(chosen, frame["has_sentence"])
    return {
        "iou": float(valid["iou"].mean()) if len(valid) else float("nan"),
        "iou_detected": float(valid.loc[valid["detected"], "iou"].mean())
        if valid["detected"].any() else float("nan"),
        "detection_rate": float(valid["detected"].mean()) if len(valid) else float("nan"),
        "selection_precision": precision,
        "selection_recall": recall,
        "selection_f1": f1,
    }


def region_metrics(
    predictions: pd.DataFrame,
    ground_truth: pd.DataFrame,
    ids: Sequence[str],
    indices: Sequence[np.ndarray],
    confidence: float = 0.95,
) -> dict:
    """Overall metrics with bootstrap CIs and a per-region breakdown.

    ``indices``: the resamples of the NLG metrics (one index array into ``ids`` per
    replicate), so region and report metrics share their resamples; the predictions must
    cover exactly ``ids``.
    """
    joined = join_ground_truth(predictions, ground_truth)
    images = [str(i) for i in ids]
    if set(joined["dicom_id"]) != set(images):
        raise ValueError("region predictions do not cover exactly the resampled test ids")
    without = joined.loc[~joined["has_ground_truth"], "dicom_id"]
    merged = joined[joined["has_ground_truth"]]
    point = _overall(merged)
    groups = {d: g for d, g in merged.groupby("dicom_id")}
    empty = merged.iloc[:0]
    reps: dict[str, list[float]] = {k: [] for k in point}
    for row in indices:
        sample = _overall(pd.concat([groups.get(images[i], empty) for i in row], ignore_index=True))
        for k, v in sample.items():
            reps[k].append(v)
    per_region = []
    for index, frame in merged.groupby("region_index"):
        stats = _overall(frame)
        name = REGIONS[int(index)] if 0 <= int(index) < len(REGIONS) else str(index)
        per_region.append({"region_index": int(index), "region": name, **stats})
    return {
        "overall": {k: with_ci(point[k], np.array(reps[k]), confidence) for k in point},
        "per_region": per_region,
        "n_images": len(images),
        "fallback_regions": int(joined["fallback"].sum()),
        "without_ground_truth": {"rows": int(len(without)), "dicom_ids": sorted(set(without))},
    }


def region_finding_metrics(predictions: pd.DataFrame, labeler) -> dict:
    """Does a region's generated sentence carry its finding? Judged by the CheXpert labeler
    (``labeler.name``) on each region's generated and reference sentence.

    ``abnormal_recall``: of the regions whose reference sentence is abnormal, the fraction
    whose generated sentence is abnormal too (an unselected region generated nothing).
    ``hallucination_rate``: of the regions whose reference is normal or absent, the fraction
    whose generated sentence is abnormal. ``same_labels``: of the abnormal-reference regions,
    the fraction whose generated sentence has exactly the reference's labels. Overall and per
    region (regions with no case of a kind get NaN there).
    """
    from .chexpert_labeler import PATHOLOGIES

    frame = predictions[["region_index", "generated_sentence", "reference_sentence"]].copy()
    for column in ("generated_sentence", "reference_sentence"):
        frame[column] = frame[column].fillna("").astype(str)
    generated = labeler.label(frame["generated_sentence"].tolist())[list(PATHOLOGIES)]
    reference = labeler.label(frame["reference_sentence"].tolist())[list(PATHOLOGIES)]
    generated_abnormal = generated.isin([1.0, -1.0]).any(axis=1).to_numpy()
    reference_abnormal = reference.isin([1.0, -1.0]).any(axis=1).to_numpy()
    same = (generated.fillna(9.0).to_numpy() == reference.fillna(9.0).to_numpy()).all(axis=1)
    frame = frame.assign(generated_abnormal=generated_abnormal, reference_abnormal=reference_abnormal,
                         same_labels=same)

    def rates(part: pd.DataFrame) -> dict:
        abnormal, normal = part[part["reference_abnormal"]], part[~part["reference_abnormal"]]
        return {
            "abnormal_regions": int(len(abnormal)),
            "abnormal_recall": float(abnormal["generated_abnormal"].mean()) if len(abnormal) else float("nan"),
            "same_labels": float(abnormal["same_labels"].mean()) if len(abnormal) else float("nan"),
            "normal_regions": int(len(normal)),
            "hallucination_rate": float(normal["generated_abnormal"].mean()) if len(normal) else float("nan"),
        }

    per_region = [{"region_index": int(i), "region": REGIONS[int(i)], **rates(part)}
                  for i, part in frame.groupby("region_index")]
    return {"labeler": labeler.name, "overall": rates(frame), "per_region": per_region}
