"""Image normalisation for the ImageNet-initialised encoders (R-CLIP and the RSNA probes).

``rclip.normalization``:

- ``dataset``: ``(x - mean) / std`` on the grey image with ``rclip.normalize`` (the MIMIC
  statistics); the encoder replicates the one channel to RGB.
- ``imagenet``: the grey image replicated to RGB, each channel normalised with the ImageNet
  mean / std. CXR-CLIP (the paper's code) does this for every ResNet run, so the pretrained
  first convolution sees the input distribution it was trained on.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import torch

KINDS = ("dataset", "imagenet")
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class Normalization:
    """Per-channel mean / std; one channel keeps the grey image, three replicate it."""

    mean: tuple[float, ...]
    std: tuple[float, ...]
    kind: str = "dataset"

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """float (1, H, W) in [0, 1] -> (C, H, W), C = len(mean)."""
        channels = len(self.mean)
        mean = torch.tensor(self.mean, dtype=x.dtype).view(channels, 1, 1)
        std = torch.tensor(self.std, dtype=x.dtype).view(channels, 1, 1)
        return (x.expand(channels, -1, -1) - mean) / std

    def record(self) -> dict:
        """What a model folder stores: scalars for one channel (the format readers expect), lists for RGB."""
        if len(self.mean) == 1:
            return {"kind": self.kind, "mean": self.mean[0], "std": self.std[0]}
        return {"kind": self.kind, "mean": list(self.mean), "std": list(self.std)}


def normalization(kind: str = "dataset", stats: Mapping | None = None) -> Normalization:
    """The normalisation of ``rclip.normalization`` (``stats`` = ``rclip.normalize`` for ``dataset``)."""
    if kind == "imagenet":
        return Normalization(IMAGENET_MEAN, IMAGENET_STD, "imagenet")
    if kind != "dataset":
        raise ValueError(f"rclip.normalization {kind!r}: expected one of {KINDS}")
    stats = dict(stats or {"mean": 0.471, "std": 0.302})
    return Normalization((float(stats["mean"]),), (float(stats["std"]),), "dataset")
