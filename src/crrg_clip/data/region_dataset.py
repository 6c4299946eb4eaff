"""Cache-backed data for RRG stages 1 and 2.

The MIMIC image cache (``results/cache/mimic/images.npy``, uint8 (N, S, S), read as a memmap)
and its region table (boxes already in cache pixels) become:

* ``RegionTargets``: per image ``boxes (N, R, 4)`` (NaN = not a target), ``has_sentence`` and
  ``is_abnormal`` (N, R) — the pivot of ``regions.parquet`` in ``REGIONS`` order;
* ``DetectorData``: images + targets for the detector, with the training augmentation
  (brightness / contrast jitter, Gaussian noise, small translate + rotate with the boxes moved by
  the same affine map) and normalisation with ``rrg.normalize``.

Augmentation randomness comes from a generator seeded by ``(seed, epoch, item)``, so an item's
augmentation does not depend on what ran before it (resumed runs see the same images).

Letters: N images, R regions (29), S image side.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from crrg_clip.regions import NUM_REGIONS
from crrg_clip.rng import item_generator

log = logging.getLogger(__name__)

MIN_BOX_SIDE = 1.0  # pixels; thinner boxes (after clipping) are not targets


@dataclass(frozen=True)
class AugmentConfig:
    brightness: float = 0.1
    contrast: float = 0.1
    noise_std: float = 0.02
    translate_fraction: float = 0.02
    rotate_degrees: float = 2.0
    p: float = 1.0  # each augmentation applied with this probability (the paper's code: 0.5)
    sharpen: float = 0.0  # max blend strength of a 3x3 sharpening kernel (0 = off)


@dataclass(frozen=True)
class Normalize:
    mean: float = 0.471
    std: float = 0.302


# ---------------------------------------------------------------- reading the cache

def open_image_cache(images_path: Path | str) -> np.ndarray:
    """The uint8 (N, S, S) cache as a read-only memmap."""
    images = np.load(images_path, mmap_mode="r")
    if images.ndim != 3 or images.dtype != np.uint8 or images.shape[1] != images.shape[2]:
        raise ValueError(f"{images_path}: expected uint8 (N, S, S), got {images.dtype} {images.shape}")
    return images


def read_split_ids(split_path: Path | str, split: str) -> list[str]:
    frame = pd.read_parquet(split_path, columns=["dicom_id", "split"])
    ids = frame.loc[frame["split"] == split, "dicom_id"].astype(str).tolist()
    if not ids:
        raise ValueError(f"{split_path}: no images in split {split!r}")
    return ids


def cache_rows(index_path: Path | str, dicom_ids: list[str], *, what: str) -> tuple[list[str], np.ndarray]:
    """Cache rows of ``dicom_ids`` (in the given order); ids missing from the cache are logged."""
    index = pd.read_parquet(index_path, columns=["dicom_id", "row"])
    lookup = dict(zip(index["dicom_id"].astype(str), index["row"].astype("int64")))
    missing = [d for d in dicom_ids if d not in lookup]
    if missing:
        log.warning("%s: %d of %d images are not in the cache %s (skipped): %s%s", what, len(missing),
                    len(dicom_ids), index_path, ", ".join(missing[:5]), " ..." if len(missing) > 5 else "")
    kept = [d for d in dicom_ids if d in lookup]
    if not kept:
        raise ValueError(f"{what}: none of the {len(dicom_ids)} images is in the cache {index_path}")
    return kept, np.array([lookup[d] for d in kept], dtype=np.int64)


def left_out_entry(ids) -> dict:
    """A run.json record of what a stage left out: ``{"count": n, "ids": [...]}``."""
    ids = sorted(str(i) for i in ids)
    return {"count": len(ids), "ids": ids}


def sentence_label_notes(regions_path: Path | str, dicom_ids: list[str]) -> dict:
    """What the region labels of ``dicom_ids`` lack, for the selector's run.json: images with no
    region row, images with no sentence (kept: all-negative selection targets), and regions
    flagged ``has_sentence`` whose phrase is blank (kept as positives; ids ``dicom_id/region``)."""
    frame = pd.read_parquet(regions_path, columns=["dicom_id", "region_index", "phrase", "has_sentence"])
    frame = frame[frame["dicom_id"].astype(str).isin(set(dicom_ids))]
    ids = frame["dicom_id"].astype(str)
    flagged = frame["has_sentence"].fillna(False).astype(bool)
    blank = flagged & (frame["phrase"].fillna("").astype(str).str.strip() == "")
    with_sentence = set(ids[flagged & ~blank])
    return {
        "images_without_region_rows": left_out_entry(set(dicom_ids) - set(ids)),
        "images_without_sentences": left_out_entry(set(ids) - with_sentence),
        "blank_phrases_flagged_has_sentence": left_out_entry(
            f"{d}/{int(r)}" for d, r in zip(ids[blank], frame.loc[blank, "region_index"])),
    }


@dataclass
class RegionTargets:
    """Per-image region labels in ``REGIONS`` order."""

    dicom_ids: list[str]
    boxes: np.ndarray  # (N, R, 4) float32, NaN where the box is missing or invalid
    has_sentence: np.ndarray  # (N, R) bool
    is_abnormal: np.ndarray  # (N, R) bool

    def valid_box(self) -> np.ndarray:
        """(N, R) bool: a usable ground-truth box."""
        b = self.boxes
        finite = np.isfinite(b).all(axis=-1)
        with np.errstate(invalid="ignore"):
            wide = (b[..., 2] - b[..., 0] >= MIN_BOX_SIDE) & (b[..., 3] - b[..., 1] >= MIN_BOX_SIDE)
        return finite & wide


def read_region_targets(regions_path: Path | str, dicom_ids: list[str]) -> RegionTargets:
    """Pivot ``regions.parquet`` to arrays; an absent (image, region) row is a missing box and no sentence."""
    frame = pd.read_parquet(regions_path, columns=[
        "dicom_id", "region_index", "x1", "y1", "x2", "y2", "box_valid", "has_sentence", "is_abnormal"])
    frame = frame[frame["dicom_id"].astype(str).isin(set(dicom_ids))]
    bad = frame[(frame["region_index"] < 0) | (frame["region_index"] >= NUM_REGIONS)]
    if len(bad):
        raise ValueError(f"{regions_path}: region_index outside 0..{NUM_REGIONS - 1} "
                         f"(e.g. {bad['region_index'].iloc[0]} for {bad['dicom_id'].iloc[0]})")
    position = {d: i for i, d in enumerate(dicom_ids)}
    n = len(dicom_ids)
    boxes = np.full((n, NUM_REGIONS, 4), np.nan, dtype=np.float32)
    has_sentence = np.zeros((n, NUM_REGIONS), dtype=bool)
    is_abnormal = np.zeros((n, NUM_REGIONS), dtype=bool)
    if len(frame):
        i = frame["dicom_id"].astype(str).map(position).to_numpy()
        r = frame["region_index"].to_numpy(dtype=np.int64)
        xyxy = frame[["x1", "y1", "x2", "y2"]].to_numpy(dtype=np.float32, copy=True)
        valid = frame["box_valid"].fillna(False).to_numpy(dtype=bool)
        xyxy[~valid] = np.nan
        boxes[i, r] = xyxy
        has_sentence[i, r] = frame["has_sentence"].fillna(False).to_numpy(dtype=bool)
        is_abnormal[i, r] = frame["is_abnormal"].fillna(False).to_numpy(dtype=bool)
    return RegionTargets(list(dicom_ids), boxes, has_sentence, is_abnormal)


# ---------------------------------------------------------------- augmentation

def _rotation(angle_deg: float) -> torch.Tensor:
    a = math.radians(angle_deg)
    return torch.tensor([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]], dtype=torch.float32)


def affine_image(image: torch.Tensor, angle_deg: float, shift: tuple[float, float]) -> torch.Tensor:
    """Move a square (1, S, S) image by p' = Rot(p - c) + c + shift (pixels); black fill."""
    size = image.shape[-1]
    rot = _rotation(angle_deg)
    shift_n = torch.tensor(shift, dtype=torch.float32) * 2.0 / size  # normalised coords
    # affine_grid maps output -> input: p_in = Rot^T (p_out - shift)
    theta = torch.cat([rot.T, (-rot.T @ shift_n)[:, None]], dim=1)[None]  # (1, 2, 3)
    grid = F.affine_grid(theta, [1, 1, size, size], align_corners=False)
    return F.grid_sample(image[None], grid, mode="bilinear", padding_mode="zeros", align_corners=False)[0]


def affine_boxes(boxes: torch.Tensor, angle_deg: float, shift: tuple[float, float], size: int) -> torch.Tensor:
    """The same map on xyxy boxes (n, 4): enclosing box of the moved corners, clipped; too thin -> NaN."""
    if len(boxes) == 0:
        return boxes
    rot = _rotation(angle_deg)
    centre = size / 2.0
    x1, y1, x2, y2 = boxes.unbind(-1)
    corners = torch.stack([torch.stack([x1, y1], -1), torch.stack([x2, y1], -1),
                           torch.stack([x1, y2], -1), torch.stack([x2, y2], -1)], dim=1)  # (n, 4, 2)
    moved = (corners - centre) @ rot.T + centre + torch.tensor(shift, dtype=torch.float32)
    out = torch.cat([moved.min(dim=1).values, moved.max(dim=1).values], dim=-1).clamp(0, size)  # (n, 4)
    thin = (out[:, 2] - out[:, 0] < MIN_BOX_SIDE) | (out[:, 3] - out[:, 1] < MIN_BOX_SIDE)
    out[thin] = float("nan")
    return out


def sharpen_image(image: torch.Tensor, alpha: float) -> torch.Tensor:
    """(1, S, S) in [0, 1] blended with its 3x3-sharpened self: (1 - alpha) x + alpha (9x - sum of 3x3)."""
    kernel = -torch.ones(1, 1, 3, 3, dtype=image.dtype)
    kernel[0, 0, 1, 1] = 8.0 + 1.0  # identity + Laplacian: sums to 1, so flat areas are unchanged
    padded = F.pad(image[None], (1, 1, 1, 1), mode="replicate")  # (1, 1, S+2, S+2)
    sharp = F.conv2d(padded, kernel)[0]  # (1, S, S)
    return ((1.0 - alpha) * image + alpha * sharp).clamp(0, 1)


def augment(image: torch.Tensor, boxes: torch.Tensor, cfg: AugmentConfig,
            generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Training augmentation of one (1, S, S) image in [0, 1] and its (n, 4) boxes.

    Each augmentation (brightness, contrast, noise, sharpen, translate + rotate) is applied
    with probability ``cfg.p``. With p = 1 no coin is drawn and with sharpen = 0 no strength,
    so those settings consume the generator exactly as before the keys existed."""
    def uniform(half_width: float) -> float:
        return float((torch.rand((), generator=generator) * 2 - 1) * half_width)

    def applied() -> bool:
        return cfg.p >= 1.0 or bool(torch.rand((), generator=generator) < cfg.p)

    size = image.shape[-1]
    if applied():
        image = image * (1.0 + uniform(cfg.brightness))
    if applied():
        mean = image.mean()
        image = (image - mean) * (1.0 + uniform(cfg.contrast)) + mean
    image = image.clamp(0, 1)
    if cfg.noise_std > 0 and applied():
        image = (image + torch.randn(image.shape, generator=generator) * cfg.noise_std).clamp(0, 1)
    if cfg.sharpen > 0 and applied():
        image = sharpen_image(image, float(torch.rand((), generator=generator)) * cfg.sharpen)
    if applied():
        angle = uniform(cfg.rotate_degrees)
        shift = (uniform(cfg.translate_fraction) * size, uniform(cfg.translate_fraction) * size)
        if angle != 0.0 or shift != (0.0, 0.0):
            image = affine_image(image, angle, shift)
            boxes = affine_boxes(boxes, angle, shift, size)
    return image, boxes


# ---------------------------------------------------------------- detector data

class DetectorData:
    """Images and box targets for the detector; ``batch(indices, epoch)`` builds one batch."""

    def __init__(self, images: np.ndarray, rows: np.ndarray, targets: RegionTargets, *,
                 normalize: Normalize, augment_cfg: AugmentConfig | None = None, seed: int = 0,
                 require_boxes: bool = False, name: str = "detector data"):
        self.images, self.normalize, self.augment_cfg, self.seed = images, normalize, augment_cfg, seed
        keep = np.arange(len(rows))
        self.skipped_no_boxes: list[str] = []
        self.missing_from_cache: list[str] = []  # set by load_detector_data
        if require_boxes:
            has_any = targets.valid_box().any(axis=1)
            self.skipped_no_boxes = [d for d, ok in zip(targets.dicom_ids, has_any) if not ok]
            keep = np.flatnonzero(has_any)
            if self.skipped_no_boxes:
                log.warning("%s: skipped %d image(s) with no valid region box: %s%s", name,
                            len(self.skipped_no_boxes), ", ".join(self.skipped_no_boxes[:5]),
                            " ..." if len(self.skipped_no_boxes) > 5 else "")
            if len(keep) == 0:
                raise ValueError(f"{name}: no image has a valid region box")
        self.rows = np.asarray(rows)[keep]
        self.dicom_ids = [targets.dicom_ids[i] for i in keep]
        self.boxes = targets.boxes[keep]

    def __len__(self) -> int:
        return len(self.rows)

    def left_out(self) -> dict:
        """Images of the split not used, by reason (the stage's run.json)."""
        return {"missing_from_cache": left_out_entry(self.missing_from_cache),
                "no_valid_box": left_out_entry(self.skipped_no_boxes)}

    def image(self, i: int) -> torch.Tensor:
        """(1, S, S) float in [0, 1]."""
        return torch.from_numpy(np.array(self.images[self.rows[i]], dtype=np.float32) / 255.0)[None]

    def batch(self, indices: list[int], epoch: int = 0) -> tuple[torch.Tensor, list[dict[str, torch.Tensor]]]:
        """(B, 1, S, S) normalised images and torchvision targets (labels = region_index + 1)."""
        images, targets = [], []
        for i in indices:
            image = self.image(i)
            boxes = torch.from_numpy(self.boxes[i])  # (R, 4), NaN rows are not targets
            if self.augment_cfg is not None:
                image, boxes = augment(image, boxes, self.augment_cfg, item_generator(self.seed, epoch, int(i)))
            valid = torch.isfinite(boxes).all(dim=1)
            valid &= (boxes[:, 2] - boxes[:, 0] >= MIN_BOX_SIDE) & (boxes[:, 3] - boxes[:, 1] >= MIN_BOX_SIDE)
            labels = torch.nonzero(valid).flatten() + 1
            images.append((image - self.normalize.mean) / self.normalize.std)
            targets.append({"boxes": boxes[valid].contiguous(), "labels": labels.to(torch.int64)})
        return torch.stack(images), targets

    def plain_images(self, indices: list[int]) -> torch.Tensor:
        """(B, 1, S, S) normalised, never augmented (extraction, prediction)."""
        return torch.stack([(self.image(i) - self.normalize.mean) / self.normalize.std for i in indices])


def load_detector_data(*, images_path, index_path, regions_path, split_path, split: str,
                       normalize: Normalize, augment_cfg: AugmentConfig | None = None, seed: int = 0,
                       require_boxes: bool = False) -> DetectorData:
    """One split of a subsample, read from the cache."""
    what = f"{Path(split_path).name}:{split}"
    split_ids = read_split_ids(split_path, split)
    ids, rows = cache_rows(index_path, split_ids, what=what)
    targets = read_region_targets(regions_path, ids)
    data = DetectorData(open_image_cache(images_path), rows, targets, normalize=normalize,
                        augment_cfg=augment_cfg, seed=seed, require_boxes=require_boxes, name=what)
    cached = set(ids)
    data.missing_from_cache = [d for d in split_ids if d not in cached]
    return data
