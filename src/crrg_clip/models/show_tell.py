"""Show and Tell (Vinyals et al., CVPR 2015) for whole reports.

The image's pooled CNN feature, projected to the word-embedding size, is the LSTM's first
input (its output there is not a prediction); then each word embedding is an input and the
LSTM's output, through dropout and a linear layer, predicts the next word. Teacher forcing:
``forward`` takes ``<eos> w1 .. wn <eos>`` and returns at position t the logits of token t+1
(the convention of ``models.generator.LanguageModelLoss``). Decoding: ``start`` + ``step``
(``models.beam_search``).

Letters: B batch, C CNN features, E embedding, H LSTM hidden, T tokens, V vocabulary.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch import nn

from .report_encoder import ResNetGrid, load_report_model, save_report_model

KIND = "show_tell"


@dataclass
class ShowTellConfig:
    vocab_size: int
    backbone: str = "resnet50"
    embed_dim: int = 512  # E (self-critical.pytorch input_encoding_size)
    hidden_dim: int = 512  # H (rnn_size)
    dropout: float = 0.5  # drop_prob_lm
    pad_id: int = 0


class ShowTell(nn.Module):
    def __init__(self, config: ShowTellConfig, backbone_weights: str | Path | None = None):
        super().__init__()
        self.config = config
        self.encoder = ResNetGrid(config.backbone, grid=1, weights_path=backbone_weights)
        self.image_embed = nn.Linear(self.encoder.channels, config.embed_dim)
        self.word_embed = nn.Embedding(config.vocab_size, config.embed_dim, padding_idx=config.pad_id)
        self.lstm = nn.LSTM(config.embed_dim, config.hidden_dim, batch_first=True)
        self.dropout = nn.Dropout(config.dropout)
        self.logits = nn.Linear(config.hidden_dim, config.vocab_size)
        self.vocab = None

    def forward(self, images: torch.Tensor, input_ids: torch.Tensor) -> torch.Tensor:
        """images (B, 1, H, W), input_ids (B, T) -> logits (B, T, V)."""
        return self.forward_features(self.encoder(images), input_ids)

    def forward_features(self, feats: torch.Tensor, input_ids: torch.Tensor) -> torch.Tensor:
        """Encoder output (B, 1, C), input_ids (B, T) -> logits (B, T, V)."""
        image = self.image_embed(feats[:, 0])  # (B, E)
        inputs = torch.cat([image[:, None], self.word_embed(input_ids)], dim=1)  # (B, 1+T, E)
        outputs, _ = self.lstm(self.dropout(inputs))  # (B, 1+T, H)
        return self.logits(self.dropout(outputs[:, 1:]))  # (B, T, V)

    def start(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        return self.start_features(self.encoder(images))

    def start_features(self, feats: torch.Tensor) -> dict[str, torch.Tensor]:
        """The LSTM state after reading the encoder output (B, 1, C): h, c (B, H)."""
        _, (h, c) = self.lstm(self.dropout(self.image_embed(feats[:, 0])[:, None]))  # (1, B, H)
        return {"h": h[0], "c": c[0]}

    def step(self, tokens: torch.Tensor, state: dict) -> tuple[torch.Tensor, dict]:
        """tokens (B,) -> next-token logits (B, V) and the new state."""
        x = self.dropout(self.word_embed(tokens)[:, None])  # (B, 1, E)
        out, (h, c) = self.lstm(x, (state["h"][None].contiguous(), state["c"][None].contiguous()))
        return self.logits(self.dropout(out[:, 0])), {"h": h[0], "c": c[0]}

    def save_pretrained(self, folder: Path | str, extra: dict | None = None) -> None:
        save_report_model(folder, self, {"kind": KIND, **asdict(self.config), **(extra or {})}, self.vocab)

    @classmethod
    def from_pretrained(cls, folder: Path | str, device: torch.device | str = "cpu") -> "ShowTell":
        return load_report_model(folder, kind=KIND, config_cls=ShowTellConfig, model_cls=cls, device=device)
