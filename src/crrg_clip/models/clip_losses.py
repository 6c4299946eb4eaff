"""R-CLIP losses (PROTOCOL.md, Classification): MVS, ICL and TCL.

Letters: ``B`` batch, ``P`` projection size. Inputs are L2-normalised embeddings (B, P);
row ``i`` of every view belongs to study ``i`` (the positive pairs are the diagonal).

- ``info_nce(a, b)``: cross-entropy of ``scale * a @ b.T`` against the diagonal, one direction.
- MVS (multi-view supervision): the mean of 8 cross-entropies, image view ``I1``/``I2`` x
  text view ``T1``/``T2``, each in both directions (image->text and text->image).
- ICL (image-image contrastive): ``I1`` vs ``I2``, mean of both directions.
- TCL (text-text contrastive): ``T1`` vs ``T2``, mean of both directions.
- total = loss_ratio * (MVS + image_to_image_loss_weight * ICL + text_to_text_loss_weight * TCL).

Every term uses the one learnable temperature.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F


def info_nce(a: torch.Tensor, b: torch.Tensor, logit_scale: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of a's rows against b's rows, positives on the diagonal (one direction)."""
    logits = logit_scale * a @ b.t()  # (B, B)
    targets = torch.arange(a.shape[0], device=a.device)
    return F.cross_entropy(logits.float(), targets)


def symmetric_info_nce(a: torch.Tensor, b: torch.Tensor, logit_scale: torch.Tensor) -> torch.Tensor:
    return 0.5 * (info_nce(a, b, logit_scale) + info_nce(b, a, logit_scale))


class RCLIPLoss(nn.Module):
    """``forward(outputs)`` -> ``{"mvs", "icl", "tcl", "loss"}`` (``loss`` is the weighted total)."""

    def __init__(self, image_to_image_loss_weight: float = 1.0, text_to_text_loss_weight: float = 0.5,
                 loss_ratio: float = 1.0):
        super().__init__()
        self.i2i_weight = image_to_image_loss_weight
        self.t2t_weight = text_to_text_loss_weight
        self.loss_ratio = loss_ratio

    def forward(self, outputs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        scale = outputs["logit_scale"]
        images = (outputs["image1"], outputs["image2"])  # 2 x (B, P)
        texts = (outputs["text1"], outputs["text2"])  # 2 x (B, P)
        terms = []
        for image in images:
            for text in texts:
                terms.append(info_nce(image, text, scale))  # image -> text
                terms.append(info_nce(text, image, scale))  # text -> image
        mvs = torch.stack(terms).mean()  # 8 cross-entropies
        icl = symmetric_info_nce(images[0], images[1], scale)
        tcl = symmetric_info_nce(texts[0], texts[1], scale)
        total = self.loss_ratio * (mvs + self.i2i_weight * icl + self.t2t_weight * tcl)
        return {"mvs": mvs, "icl": icl, "tcl": tcl, "loss": total}


class ConVIRTLoss(nn.Module):
    """ConVIRT (Zhang et al. 2020): ``lambda * l(image -> text) + (1 - lambda) * l(text -> image)``.

    One image view and one text view (``outputs["image"]``, ``outputs["text"]``, (B, P),
    L2-normalised, so ``a @ b.T`` is the cosine similarity) over a fixed temperature; each
    direction is the batch mean of its InfoNCE terms. Returns
    ``{"image_to_text", "text_to_image", "loss"}``.
    """

    def __init__(self, temperature: float = 0.1, image_to_text_weight: float = 0.75):
        super().__init__()
        self.temperature = temperature
        self.image_to_text_weight = image_to_text_weight

    def forward(self, outputs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        image, text = outputs["image"], outputs["text"]  # (B, P) each
        scale = torch.tensor(1.0 / self.temperature, device=image.device)
        i2t = info_nce(image, text, scale)
        t2i = info_nce(text, image, scale)
        w = self.image_to_text_weight
        return {"image_to_text": i2t, "text_to_image": t2i, "loss": w * i2t + (1.0 - w) * t2i}
