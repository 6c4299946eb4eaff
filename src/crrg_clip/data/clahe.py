"""CLAHE (contrast-limited adaptive histogram equalisation) as a random augmentation.

The paper's code puts albumentations' ``CLAHE(clip_limit=4.0)`` in its RSNA training
transform: applied with probability 0.5, its clip limit drawn uniformly from [1, 4], on
8 x 8 tiles of the 8-bit image. The same is done here with OpenCV's ``createCLAHE``
(what albumentations calls); every draw comes from the caller's generator, so a view
stays a function of ``(seed, epoch, index)``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import cv2
import numpy as np
import torch

from ..rng import uniform as _uniform


@dataclass(frozen=True)
class CLAHEConfig:
    p: float = 0.0  # 0 = off
    clip_limit: tuple[float, float] = (1.0, 4.0)
    tile_grid_size: int = 8

    @classmethod
    def from_config(cls, values: Mapping | None) -> "CLAHEConfig":
        values = dict(values or {})
        limit = values.get("clip_limit", cls.clip_limit)
        return cls(p=float(values.get("p", cls.p)), clip_limit=(float(limit[0]), float(limit[1])),
                   tile_grid_size=int(values.get("tile_grid_size", cls.tile_grid_size)))


def equalize(x: torch.Tensor, clip_limit: float, tile_grid_size: int) -> torch.Tensor:
    """float (1, H, W) in [0, 1] -> CLAHE of its 8-bit version, back in [0, 1]."""
    image = np.rint(x[0].numpy() * 255.0).clip(0, 255).astype(np.uint8)  # (H, W)
    out = cv2.createCLAHE(clipLimit=clip_limit, tileGridSize=(tile_grid_size, tile_grid_size)).apply(image)
    return torch.from_numpy(out.astype(np.float32) / 255.0)[None]


def random_clahe(x: torch.Tensor, config: CLAHEConfig, g: torch.Generator) -> torch.Tensor:
    """CLAHE with probability ``config.p`` and a clip limit drawn from ``config.clip_limit``."""
    if config.p <= 0:
        return x  # off: no draw, so the other augmentations keep their random streams
    apply = bool(torch.rand((), generator=g) < config.p)
    limit = _uniform(g, *config.clip_limit)
    return equalize(x, limit, config.tile_grid_size) if apply else x
