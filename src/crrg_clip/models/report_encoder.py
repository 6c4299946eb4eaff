"""What S&T and AdaAtt share: the ResNet image encoder and the model folder.

The encoder is the detector's ResNet trunk (``models.detector.build_backbone``: torchvision
ResNet up to C5, 1-channel ``conv1``, optional ImageNet state dict with conv1 = R + G + B);
its feature map is average-pooled to a ``grid x grid`` map (AdaAtt's 7x7 regions) or to one
vector (S&T).

A model folder is ``config.json`` (with ``kind``) + ``model.safetensors`` + ``vocab.json``.

Letters: B batch, C backbone channels, G grid side, R = G * G regions.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F

from ..modelio import load_config_model, save_model_folder
from .detector import BACKBONE_CHANNELS, build_backbone
from .report_vocab import WordVocab

VOCAB_FILE = "vocab.json"


class ResNetGrid(nn.Module):
    """(B, 1, H, W) normalised images -> (B, R, C) region features on a G x G grid."""

    def __init__(self, backbone: str, grid: int, weights_path: str | Path | None = None):
        super().__init__()
        if backbone not in BACKBONE_CHANNELS:
            raise ValueError(f"backbone {backbone!r}: expected one of {sorted(BACKBONE_CHANNELS)}")
        self.trunk = build_backbone(backbone, weights_path, frozen_batchnorm=False)
        self.grid = grid
        self.channels = BACKBONE_CHANNELS[backbone]
        # Per-channel standardisation, set from the training images when the encoder is frozen
        # (identity otherwise): a frozen CNN's features on similar radiographs are a large shared
        # offset with small per-image variation, which the LSTM's input layer barely sees.
        self.register_buffer("feature_mean", torch.zeros(self.channels))
        self.register_buffer("feature_std", torch.ones(self.channels))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        fmap = self.trunk(images)  # (B, C, h, w)
        pooled = F.adaptive_avg_pool2d(fmap, self.grid)  # (B, C, G, G)
        return (pooled.flatten(2).transpose(1, 2) - self.feature_mean) / self.feature_std  # (B, R, C)

    @torch.no_grad()
    def set_standardization(self, feats: torch.Tensor) -> torch.Tensor:
        """Fit the per-channel mean/std to raw features (N, R, C); returns them standardised."""
        flat = feats.reshape(-1, feats.shape[-1])  # (N * R, C)
        self.feature_mean.copy_(flat.mean(0))
        self.feature_std.copy_(flat.std(0).clamp_min(1e-6))
        return (feats - self.feature_mean) / self.feature_std


def save_report_model(folder: Path | str, model: nn.Module, config: dict, vocab: WordVocab | None) -> None:
    save_model_folder(folder, model, config)
    if vocab is not None:
        vocab.save(Path(folder) / VOCAB_FILE)


def load_report_model(folder: Path | str, *, kind: str, config_cls, model_cls,
                      device: torch.device | str = "cpu") -> nn.Module:
    """The model in eval mode, its ``vocab`` attached when the folder has one."""
    model = load_config_model(folder, kind=kind, config_cls=config_cls, model_cls=model_cls, device=device)
    path = Path(folder) / VOCAB_FILE
    model.vocab = WordVocab.load(path) if path.exists() else None
    return model
