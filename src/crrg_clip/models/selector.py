"""Stage 2 of RRG: region projection, region selection and the abnormal auxiliary classifier.

The projection ``Linear(C, region_feature_dim)`` (PROTOCOL: RoIAlign -> average pool ->
Linear(2048, 1024)) lives here because stage 1 never trains it; the generator stage loads this
folder and uses ``project`` (frozen) as its region features.

Selection MLP ``D -> 512 -> 128 -> 1`` with ReLU (the paper's hidden sizes at every D), trained
with BCEWithLogits (pos_weight = the variant's ``selection_pos_weight``) on ``has_sentence``;
the optional abnormal classifier has the same shape (pos_weight ``rrg.abnormal_pos_weight``)
and is trained on ``is_abnormal`` over the same regions (auxiliary loss only).

Input standardisation (ours; the paper is silent): ``project`` first maps each detector channel
to zero mean and unit std with the training split's statistics over detected regions
(``fit_standardization``), kept as buffers in the folder so inference applies the same ones. The
detector's pooled features sit on a large shared offset with small per-region variation, which a
shared MLP trained for a few hundred steps does not undo on its own (benchmarks/results/rrg_signal.md).

Which regions count: only regions the detector found (``detected``): an undetected region has
a zero feature and is never selected, so it carries no label information. Decision rule:
``selected = detected & (logit > selection_threshold)``.

Letters: B images, R regions (29), C detector feature channels, D region_feature_dim.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F

from crrg_clip.modelio import load_config_model, save_model_folder

KIND = "rrg_region_selector"
LOSS_WEIGHTS = {"select": 5.0, "abnormal": 5.0}  # PROTOCOL stage weights (5 x select + 5 x abnormal)


@dataclass
class SelectorConfig:
    in_channels: int
    region_feature_dim: int = 1024
    hidden: list[int] = field(default_factory=lambda: [512, 128])
    abnormal_classifier: bool = True
    selection_pos_weight: float = 1.0
    abnormal_pos_weight: float = 6.0
    selection_threshold: float = -1.0


def mlp(dims: list[int]) -> nn.Sequential:
    """Linear layers with ReLU between them (none after the last)."""
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(dims[:-1], dims[1:])):
        layers.append(nn.Linear(a, b))
        if i < len(dims) - 2:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


def masked_bce(logits: torch.Tensor, targets: torch.Tensor, mask: torch.Tensor, pos_weight: float) -> torch.Tensor:
    """Mean BCEWithLogits over the masked entries; 0 (with a graph) when the mask is empty."""
    weight = torch.tensor(pos_weight, dtype=logits.dtype, device=logits.device)
    per = F.binary_cross_entropy_with_logits(logits, targets.to(logits.dtype), pos_weight=weight, reduction="none")
    mask = mask.to(logits.dtype)
    return (per * mask).sum() / mask.sum().clamp(min=1.0)


class RegionSelector(nn.Module):
    def __init__(self, config: SelectorConfig):
        super().__init__()
        self.config = config
        dims = [config.region_feature_dim, *config.hidden, 1]
        self.projection = nn.Linear(config.in_channels, config.region_feature_dim)
        self.select_head = mlp(dims)
        self.abnormal_head = mlp(dims) if config.abnormal_classifier else None
        self.register_buffer("feature_mean", torch.zeros(config.in_channels))  # (C,)
        self.register_buffer("feature_std", torch.ones(config.in_channels))  # (C,)

    @torch.no_grad()
    def fit_standardization(self, features: torch.Tensor, detected: torch.Tensor) -> None:
        """Per-channel mean/std of (N, R, C) training features over the detected (N, R) regions."""
        found = features[detected.bool()].float()  # (K, C)
        if len(found) < 2:
            raise ValueError("cannot standardise region features: fewer than two detected training regions")
        self.feature_mean.copy_(found.mean(0))
        self.feature_std.copy_(found.std(0).clamp_min(1e-6))

    def standardize(self, features: torch.Tensor) -> torch.Tensor:
        """(B, R, C) detector features -> the same, standardised with the training statistics, on
        the features' device."""
        mean, std = (t.to(features.device) for t in (self.feature_mean, self.feature_std))  # (C,)
        return (features.to(mean.dtype) - mean) / std

    def save_pretrained(self, folder: Path | str, extra: dict | None = None) -> None:
        save_model_folder(folder, self, {"kind": KIND, **asdict(self.config), **(extra or {})})

    @classmethod
    def from_pretrained(cls, folder: Path | str, device: torch.device | str = "cpu") -> "RegionSelector":
        """Rebuilt from ``config.json`` with ``model.safetensors`` loaded, in eval mode."""
        return load_config_model(folder, kind=KIND, config_cls=SelectorConfig, model_cls=cls, device=device)

    def project(self, features: torch.Tensor) -> torch.Tensor:
        """(B, R, C) detector features -> (B, R, D) region features."""
        return self.projection(self.standardize(features).to(self.projection.weight.dtype))

    def logits(self, features: torch.Tensor) -> dict[str, torch.Tensor]:
        """(B, R, C) -> {"select": (B, R), "abnormal": (B, R) when enabled}."""
        regions = self.project(features)  # (B, R, D)
        out = {"select": self.select_head(regions).squeeze(-1)}
        if self.abnormal_head is not None:
            out["abnormal"] = self.abnormal_head(regions).squeeze(-1)
        return out

    def forward(self, features: torch.Tensor, has_sentence: torch.Tensor, is_abnormal: torch.Tensor,
                detected: torch.Tensor) -> dict[str, torch.Tensor]:
        """Named losses (unweighted), over detected regions only; sum with ``total_loss``."""
        logits = self.logits(features)
        losses = {"select": masked_bce(logits["select"], has_sentence, detected, self.config.selection_pos_weight)}
        if "abnormal" in logits:
            losses["abnormal"] = masked_bce(logits["abnormal"], is_abnormal, detected,
                                            self.config.abnormal_pos_weight)
        return losses

    @torch.no_grad()
    def select(self, features: torch.Tensor, detected: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, R, C) -> selection logits (B, R) and selected (B, R) bool (logit > threshold, and detected)."""
        logits = self.logits(features)["select"]
        selected = logits > self.config.selection_threshold
        if detected is not None:
            selected &= detected.bool()
        return logits, selected


def total_loss(losses: dict[str, torch.Tensor]) -> torch.Tensor:
    return sum(LOSS_WEIGHTS[name] * value for name, value in losses.items())
