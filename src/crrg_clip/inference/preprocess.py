"""What a model folder says about its images: cache side, JPEG draft flag, normalisation.

Read from the loaded model's ``folder_config`` (its config.json, ``crrg_clip.modelio``).

Training folders written since the inference commands record ``image_cache: {size,
jpeg_draft}`` in their config.json (the cache the model was trained on). Older folders do
not; then the fallback is stated in ``notes`` (printed once by the command):

- detector: the cache side is the detector's ``image_size`` (the config schema requires
  the two to be the MIMIC cache size) and JPEGs are drafted (``image_cache.jpeg_draft``'s
  default, used by both shipped configs);
- probe: the RSNA cache side is unknown, so images are letterboxed straight to the probe's
  ``image_size`` (one resize instead of the cache's two: close, not bit-identical).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch

DEFAULT_JPEG_DRAFT = True  # workflow/schemas/config.schema.yaml: image_cache.jpeg_draft


@dataclass(frozen=True)
class Preprocessing:
    cache_size: int  # S of the letterbox canvas (the image cache's side)
    jpeg_draft: bool
    mean: tuple[float, ...]  # per channel: (x / 255 - mean) / std; one value keeps the grey image
    std: tuple[float, ...]
    input_size: int  # the side the network reads (resized from S when different)
    notes: tuple[str, ...] = field(default_factory=tuple)

    def normalise(self, x: torch.Tensor) -> torch.Tensor:
        """float (B, 1, H, W) in [0, 1] -> (B, C, H, W), C = len(mean) (3 replicates the grey image)."""
        channels = len(self.mean)
        mean = torch.tensor(self.mean, dtype=x.dtype).view(1, channels, 1, 1)
        std = torch.tensor(self.std, dtype=x.dtype).view(1, channels, 1, 1)
        return (x.expand(-1, channels, -1, -1) - mean) / std


def _per_channel(value) -> tuple[float, ...]:
    """A stored mean / std: a scalar (grey) or a list (one per RGB channel, data/normalize.py)."""
    return tuple(float(v) for v in value) if isinstance(value, (list, tuple)) else (float(value),)


def _cache_entry(config: dict) -> dict:
    entry = config.get("image_cache")
    return entry if isinstance(entry, dict) else {}


def detector_preprocessing(folder: Path | str, config: dict) -> Preprocessing:
    """``config``: the detector folder's config.json (``folder`` names it in the notes)."""
    cache, notes = _cache_entry(config), []
    size = cache.get("size")
    if size is None:
        size = int(config["image_size"])
        notes.append(f"{folder}/config.json records no image_cache.size (trained before it was stored): "
                     f"letterboxing to the detector's image_size {size}")
    draft = cache.get("jpeg_draft")
    if draft is None:
        draft = DEFAULT_JPEG_DRAFT
        notes.append(f"{folder}/config.json records no image_cache.jpeg_draft: using the default ({draft})")
    return Preprocessing(cache_size=int(size), jpeg_draft=bool(draft), mean=_per_channel(config["normalize_mean"]),
                         std=_per_channel(config["normalize_std"]), input_size=int(config["image_size"]),
                         notes=tuple(notes))


def probe_preprocessing(folder: Path | str, config: dict) -> Preprocessing:
    """``config``: the probe folder's config.json (``folder`` names it in the messages)."""
    cache, notes = _cache_entry(config), []
    input_size = int(config.get("image_size", 224))
    size = cache.get("size")
    if size is None:
        size = input_size
        notes.append(f"{folder}/config.json records no image_cache.size (trained before it was stored): "
                     f"letterboxing straight to the probe's image_size {size}")
    normalize = config.get("normalize") or {}
    if "mean" not in normalize or "std" not in normalize:
        raise ValueError(f"{folder}/config.json: no normalize mean/std")
    draft = cache.get("jpeg_draft", DEFAULT_JPEG_DRAFT)  # RSNA is DICOM; applies to JPEG inputs only
    mean, std = _per_channel(normalize["mean"]), _per_channel(normalize["std"])
    if len(mean) != len(std) or len(mean) not in (1, 3):
        raise ValueError(f"{folder}/config.json: normalize mean/std must both be scalars or 3-lists")
    return Preprocessing(cache_size=int(size), jpeg_draft=bool(draft), mean=mean, std=std,
                         input_size=input_size, notes=tuple(notes))
