"""The RSNA linear probe: a frozen image encoder, kept in eval mode, and ``Linear(F, 1)``.

The head may read standardised features, ``(f - mean) / std`` with the training images'
feature statistics held as buffers (``probe.standardize``). That is still one linear
function of the frozen features (it folds into the Linear layer); it only conditions the
optimisation, which otherwise depends on the arbitrary scale of each encoder's features.
With the buffers at 0 / 1 (the default) the head is the plain ``Linear(F, 1)``.

Letters: ``B`` batch, ``F`` pooled image features. The paper's "linear layer, input 224,
output 1" means images of side 224 into ``Linear(2048, 1)`` on ResNet-50 features.

Encoders (the ``{encoder}`` wildcard): ``rclip_radiologist`` / ``rclip_generated`` (the image
tower of an R-CLIP model folder), ``random_init`` (a seeded random ResNet) and
``imagenet_init`` (a local torchvision ImageNet state dict).
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from .. import modelio
from ..systems import parse_encoder
from .clip import ImageEncoder, load_clip_image_encoder

KIND = "rsna_probe"


class LinearProbe(nn.Module):
    """Frozen encoder + linear head. ``train()`` never puts the encoder in training mode."""

    def __init__(self, encoder: ImageEncoder):
        super().__init__()
        self.encoder = encoder.requires_grad_(False).eval()
        self.head = nn.Linear(encoder.feature_dim, 1)
        self.register_buffer("feature_mean", torch.zeros(encoder.feature_dim))  # (F,)
        self.register_buffer("feature_std", torch.ones(encoder.feature_dim))  # (F,)

    @torch.no_grad()
    def set_feature_statistics(self, features: torch.Tensor, floor: float = 0.1) -> None:
        """Standardise the head's input with these (N, F) training features' mean and std.

        A std is floored at ``floor`` x the median std: a feature that is (nearly) constant
        on these images (a dead ReLU of a random network) would otherwise blow up the small
        changes that augmentation makes to it.
        """
        std = features.std(0, unbiased=False)  # (F,)
        self.feature_mean.copy_(features.mean(0))
        self.feature_std.copy_(std.clamp_min(max(floor * float(std.median()), 1e-6)))

    def train(self, mode: bool = True) -> "LinearProbe":
        super().train(mode)
        self.encoder.eval()  # BatchNorm statistics stay those of pretraining
        return self

    @torch.no_grad()
    def features(self, images: torch.Tensor) -> torch.Tensor:
        return self.encoder(images).float()  # (B, F)

    def classify(self, features: torch.Tensor) -> torch.Tensor:
        return self.head((features - self.feature_mean) / self.feature_std).squeeze(-1)  # (B,) logits

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.classify(self.features(images))  # (B,)

    @torch.no_grad()
    def predict_proba(self, images: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self(images))  # (B,)

    def save_pretrained(self, folder: str | Path, extra: dict | None = None) -> None:
        """``extra``: the run's record (encoder, image_size, normalize, image_cache, results)."""
        modelio.save_model_folder(folder, self, {
            "kind": KIND, "image_encoder": self.encoder.arch,
            "feature_dim": self.encoder.feature_dim, **(extra or {})})

    @classmethod
    def from_pretrained(cls, folder: str | Path, device: torch.device | str = "cpu") -> "LinearProbe":
        """The saved probe in eval mode, ``folder_config`` (normalisation, image size) attached."""
        config = modelio.read_config(folder, KIND)
        probe = cls(ImageEncoder(config["image_encoder"]))
        modelio.load_weights(folder, probe, device)
        return modelio.finish_loading(probe, config, device)


def build_encoder(kind: str, *, arch: str, seed: int, clip_folder: str | Path | None = None,
                  image_weights: str | Path | None = None) -> ImageEncoder:
    """The frozen encoder of one probe row."""
    if parse_encoder(kind).has_clip_folder:  # ConVIRT folders are saved like R-CLIP's
        if not clip_folder:
            raise ValueError(f"probe encoder {kind}: needs the R-CLIP model folder")
        return load_clip_image_encoder(clip_folder)
    if kind == "imagenet_init":
        if not image_weights:
            raise ValueError("probe encoder imagenet_init: rclip.image_weights is not set")
        return ImageEncoder(arch, image_weights)
    generator_state = torch.get_rng_state()
    torch.manual_seed(seed)  # random_init: the same random network for a given seed
    encoder = ImageEncoder(arch)
    torch.set_rng_state(generator_state)
    return encoder
