"""ConVIRT (Zhang et al., 2020) on R-CLIP's towers: what differs from R-CLIP, and nothing else.

- Projection heads: one hidden layer with ReLU, ``Linear(F, hidden) - ReLU - Linear(hidden, P)``
  (``hidden`` defaults to the tower's own width), for the image and the text.
- Text pooling: max over the token outputs (padding excluded), not the [SEP] state.
- The text tower's embeddings and first ``frozen_text_layers`` transformer layers are frozen.
- Temperature: fixed (``logit_scale`` is not trained).
- One image view and one text view: ``forward`` ignores the second views that the R-CLIP
  data also delivers (so the same data and training loop serve both).

It is saved like R-CLIP (kind ``rclip``, config ``loss: convirt``): the RSNA probe reads its
image tower like R-CLIP's, and ``CLIPModel.from_pretrained`` gives back a ``ConVIRTModel``.
Letters: B batch, T tokens, E text width, F image features, P projection.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from .clip import CLIPModel, ImageEncoder, load_text_encoder, saved_temperature


def projection_head(in_dim: int, hidden_dim: int, out_dim: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(in_dim, hidden_dim), nn.ReLU(), nn.Linear(hidden_dim, out_dim))


def freeze_text_layers(text_encoder: nn.Module, layers: int, embeddings: bool = True) -> None:
    """Freeze the BERT embeddings (optionally) and its first ``layers`` transformer layers."""
    blocks = text_encoder.encoder.layer
    if layers > len(blocks):
        raise ValueError(f"convirt.frozen_text_layers = {layers}: the text model has only {len(blocks)} layers")
    if embeddings:
        text_encoder.embeddings.requires_grad_(False)
    for block in blocks[:layers]:
        block.requires_grad_(False)


class ConVIRTModel(CLIPModel):
    def __init__(self, image_encoder: ImageEncoder, text_encoder: nn.Module, *, projection_dim: int,
                 hidden_dim: int | None, temperature: float, sep_token_id: int, frozen_text_layers: int,
                 freeze_text_embeddings: bool = True):
        super().__init__(image_encoder, text_encoder, projection_dim=projection_dim, temperature_init=temperature,
                         sep_token_id=sep_token_id)
        width = text_encoder.config.hidden_size
        self.image_projection = projection_head(image_encoder.feature_dim, hidden_dim or image_encoder.feature_dim,
                                                projection_dim)
        self.text_projection = projection_head(width, hidden_dim or width, projection_dim)
        self.logit_scale.requires_grad_(False)
        freeze_text_layers(text_encoder, frozen_text_layers, freeze_text_embeddings)

    @classmethod
    def from_config(cls, config: dict, image_encoder: ImageEncoder, text_encoder: nn.Module,
                    state: dict[str, torch.Tensor]) -> "ConVIRTModel":
        """The structure of a saved model; the head widths come from the weights (the config
        has none) and no text layer is frozen (the count is not saved; inference needs none)."""
        widths = (state["image_projection.0.weight"].shape[0], state["text_projection.0.weight"].shape[0])
        defaults = (image_encoder.feature_dim, text_encoder.config.hidden_size)
        if widths != defaults and widths[0] != widths[1]:
            raise ValueError(f"ConVIRT head widths {widths}: neither one hidden_dim nor the towers' {defaults}")
        return cls(image_encoder, text_encoder, projection_dim=config["projection_dim"],
                   hidden_dim=None if widths == defaults else widths[0], temperature=saved_temperature(state),
                   sep_token_id=config["sep_token_id"], frozen_text_layers=0, freeze_text_embeddings=False)

    def encode_text(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        hidden = self.text_encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state  # (B, T, E)
        padding = attention_mask[..., None] == 0  # (B, T, 1)
        pooled = hidden.masked_fill(padding, torch.finfo(hidden.dtype).min).max(dim=1).values  # (B, E)
        return F.normalize(self.text_projection(pooled), dim=-1)  # (B, P)

    def forward(self, image1, image2, text1: dict, text2: dict) -> dict[str, torch.Tensor]:
        """Embeddings of the first image view and the first text (the second views are unused)."""
        return {"image": self.encode_image(image1),  # (B, P)
                "text": self.encode_text(text1["input_ids"], text1["attention_mask"]),  # (B, P)
                "logit_scale": self.scale()}


def build_convirt_training(settings, convirt: dict):
    """(model, tokenizer, criterion, optimizer) of a ConVIRT run; ``settings`` is R-CLIP's CLIPSettings."""
    from .clip_losses import ConVIRTLoss

    text_encoder, tokenizer = load_text_encoder(settings.text_model)
    model = ConVIRTModel(ImageEncoder(settings.image_encoder, settings.image_weights), text_encoder,
                         projection_dim=int(convirt["projection_dim"]),
                         hidden_dim=convirt["projection_hidden_dim"],
                         temperature=float(convirt["temperature"]), sep_token_id=tokenizer.sep_token_id,
                         frozen_text_layers=int(convirt["frozen_text_layers"]),
                         freeze_text_embeddings=bool(convirt["freeze_text_embeddings"]))
    model.tokenizer = tokenizer  # saved with the model
    criterion = ConVIRTLoss(float(convirt["temperature"]), float(convirt["image_to_text_weight"]))
    # Adam with L2 weight decay, as the ConVIRT paper (not AdamW)
    optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=float(convirt["lr"]),
                                 weight_decay=float(convirt["weight_decay"]))
    return model, tokenizer, criterion, optimizer
