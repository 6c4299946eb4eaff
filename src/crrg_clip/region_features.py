"""Region features: the trained detector run once over a split, stored as safetensors.

``{subsample}_{split}.safetensors`` holds ``features (N, R, C) float16``, ``boxes (N, R, 4)
float32`` (cache pixels, 0 where not detected), ``detected (N, R) uint8`` (0/1) and
``scores (N, R) float32``; the ``.parquet`` beside it gives ``dicom_id, row, cache_row``
(``row`` indexes the tensors, ``cache_row`` the image cache). Extraction sees no augmentation:
features are extracted once, which makes stages 2 and 3 fast.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd
import torch
from safetensors.torch import load_file, save_file
from tqdm import tqdm

from crrg_clip.data.region_dataset import DetectorData
from crrg_clip.models.detector import RegionDetector
from crrg_clip.regions import NUM_REGIONS

log = logging.getLogger(__name__)

TENSORS = ("features", "boxes", "detected", "scores")


@torch.no_grad()
def extract_region_features(detector: RegionDetector, data: DetectorData, *, batch_size: int,
                            device: torch.device | str, progress: bool = True) -> dict[str, torch.Tensor]:
    detector.eval().to(device)
    parts: dict[str, list[torch.Tensor]] = {k: [] for k in TENSORS}
    starts = range(0, len(data), batch_size)
    for start in tqdm(starts, desc="region features", disable=not progress):
        indices = list(range(start, min(start + batch_size, len(data))))
        out = detector.predict(data.plain_images(indices).to(device))
        parts["features"].append(out["features"].to("cpu", torch.float16))  # (B, R, C)
        parts["boxes"].append(out["boxes"].to("cpu", torch.float32))  # (B, R, 4)
        parts["detected"].append(out["detected"].to("cpu", torch.uint8))  # (B, R)
        parts["scores"].append(out["scores"].to("cpu", torch.float32))  # (B, R)
    tensors = {k: torch.cat(v) for k, v in parts.items()}
    rate = tensors["detected"].float().mean().item()
    log.info("extracted %d images, %.1f%% of regions detected", len(data), 100 * rate)
    return tensors


def save_region_features(safetensors_path: Path | str, parquet_path: Path | str,
                         tensors: dict[str, torch.Tensor], dicom_ids: list[str], cache_rows) -> None:
    n = len(dicom_ids)
    for name in TENSORS:
        if name not in tensors or tensors[name].shape[0] != n or tensors[name].shape[1] != NUM_REGIONS:
            raise ValueError(f"region features: tensor {name!r} missing or not ({n}, {NUM_REGIONS}, ...)")
    Path(safetensors_path).parent.mkdir(parents=True, exist_ok=True)
    save_file({k: tensors[k].contiguous() for k in TENSORS}, str(safetensors_path),
              metadata={"regions": str(NUM_REGIONS), "images": str(n)})
    frame = pd.DataFrame({"dicom_id": [str(d) for d in dicom_ids], "row": range(n),
                          "cache_row": [int(r) for r in cache_rows]})
    frame["row"] = frame["row"].astype("int64")
    frame["cache_row"] = frame["cache_row"].astype("int64")
    frame.to_parquet(parquet_path, index=False)


def load_region_features(safetensors_path: Path | str, parquet_path: Path | str | None = None
                         ) -> tuple[dict[str, torch.Tensor], pd.DataFrame]:
    """Tensors (``detected`` as bool) and the ``dicom_id, row`` table, checked against each other."""
    safetensors_path = Path(safetensors_path)
    parquet_path = Path(parquet_path) if parquet_path else safetensors_path.with_suffix(".parquet")
    tensors = load_file(str(safetensors_path))
    missing = [k for k in TENSORS if k not in tensors]
    if missing:
        raise ValueError(f"{safetensors_path}: missing tensor(s) {missing}")
    tensors["detected"] = tensors["detected"].bool()
    frame = pd.read_parquet(parquet_path)
    if len(frame) != tensors["features"].shape[0] or list(frame["row"]) != list(range(len(frame))):
        raise ValueError(f"{parquet_path}: {len(frame)} rows do not index the "
                         f"{tensors['features'].shape[0]} images of {safetensors_path}")
    frame["dicom_id"] = frame["dicom_id"].astype(str)
    return tensors, frame
