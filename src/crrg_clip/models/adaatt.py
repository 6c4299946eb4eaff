"""Adaptive attention with a visual sentinel (Lu et al., "Knowing When to Look", CVPR 2017).

Spatial CNN features a_1..a_R (a G x G grid; 7x7 = 49 regions in the paper) and their mean
a_g become v_i = ReLU(W_a a_i) and v_g = ReLU(W_b a_g). At step t an ``LSTMCell`` reads
x_t = [w_t; v_g] and gives h_t, m_t. The sentinel s_t = g_t * tanh(m_t) with gate
g_t = sigmoid(W_x x_t + W_h h_{t-1}) is what the language state offers instead of the image.
Attention scores z_i = w^T tanh(W_v v_i + W_g h_t) over the regions and
w^T tanh(W_s s_t + W_g h_t) for the sentinel share one softmax; its last weight is beta_t and
c_hat_t = beta_t s_t + sum_i alpha_i v_i. The next word comes from W_p (c_hat_t + h_t).
Teacher forcing runs the same ``step`` over the target, so ``forward`` and decoding agree.

Letters: B batch, R regions, C CNN features, E embedding, H hidden, A attention, T tokens,
V vocabulary.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F

from .report_encoder import ResNetGrid, load_report_model, save_report_model

KIND = "adaatt"


@dataclass
class AdaAttConfig:
    vocab_size: int
    backbone: str = "resnet50"
    grid: int = 7  # G: 7 x 7 = 49 regions (+ the sentinel)
    embed_dim: int = 512  # E
    hidden_dim: int = 512  # H
    attention_dim: int = 512  # A
    dropout: float = 0.5
    pad_id: int = 0


class AdaAtt(nn.Module):
    def __init__(self, config: AdaAttConfig, backbone_weights: str | Path | None = None):
        super().__init__()
        self.config = config
        h, a = config.hidden_dim, config.attention_dim
        self.encoder = ResNetGrid(config.backbone, grid=config.grid, weights_path=backbone_weights)
        self.region_proj = nn.Linear(self.encoder.channels, h)  # W_a
        self.global_proj = nn.Linear(self.encoder.channels, h)  # W_b
        self.word_embed = nn.Embedding(config.vocab_size, config.embed_dim, padding_idx=config.pad_id)
        self.cell = nn.LSTMCell(config.embed_dim + h, h)
        self.gate_x = nn.Linear(config.embed_dim + h, h)  # W_x
        self.gate_h = nn.Linear(h, h, bias=False)  # W_h
        self.att_v = nn.Linear(h, a)  # W_v
        self.att_s = nn.Linear(h, a)  # W_s
        self.att_h = nn.Linear(h, a, bias=False)  # W_g
        self.att_w = nn.Linear(a, 1, bias=False)  # w
        self.dropout = nn.Dropout(config.dropout)
        self.logits = nn.Linear(h, config.vocab_size)  # W_p
        self.vocab = None

    def start(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        return self.start_features(self.encoder(images))

    def start_features(self, feats: torch.Tensor) -> dict[str, torch.Tensor]:
        """Encoder output (B, R, C) -> projected regions, their attention keys, v_g, a zero LSTM state."""
        regions = self.dropout(F.relu(self.region_proj(feats)))  # (B, R, H)
        global_ = self.dropout(F.relu(self.global_proj(feats.mean(dim=1))))  # (B, H)
        zeros = regions.new_zeros(feats.shape[0], self.config.hidden_dim)  # (B, H)
        return {"regions": regions, "keys": self.att_v(regions), "global": global_, "h": zeros, "c": zeros}

    def step(self, tokens: torch.Tensor, state: dict) -> tuple[torch.Tensor, dict]:
        """tokens (B,) -> next-token logits (B, V) and the new state."""
        x = torch.cat([self.dropout(self.word_embed(tokens)), state["global"]], dim=-1)  # (B, E+H)
        h, c = self.cell(x, (state["h"], state["c"]))  # (B, H)
        sentinel = torch.sigmoid(self.gate_x(x) + self.gate_h(state["h"])) * torch.tanh(c)  # (B, H)
        query = self.att_h(h)  # (B, A)
        z_regions = self.att_w(torch.tanh(state["keys"] + query[:, None]))[..., 0]  # (B, R)
        z_sentinel = self.att_w(torch.tanh(self.att_s(sentinel) + query))  # (B, 1)
        weights = torch.softmax(torch.cat([z_regions, z_sentinel], dim=1), dim=1)  # (B, R+1)
        beta = weights[:, -1:]  # (B, 1)
        context = (weights[:, :-1, None] * state["regions"]).sum(dim=1) + beta * sentinel  # (B, H)
        logits = self.logits(self.dropout(context + h))  # (B, V)
        return logits, {**state, "h": h, "c": c}

    def forward(self, images: torch.Tensor, input_ids: torch.Tensor) -> torch.Tensor:
        """images (B, 1, H, W), input_ids (B, T) -> logits (B, T, V)."""
        return self.forward_features(self.encoder(images), input_ids)

    def forward_features(self, feats: torch.Tensor, input_ids: torch.Tensor) -> torch.Tensor:
        """Encoder output (B, R, C), input_ids (B, T) -> logits (B, T, V)."""
        state = self.start_features(feats)
        steps = []
        for t in range(input_ids.shape[1]):
            logits, state = self.step(input_ids[:, t], state)  # (B, V)
            steps.append(logits)
        return torch.stack(steps, dim=1)  # (B, T, V)

    def save_pretrained(self, folder: Path | str, extra: dict | None = None) -> None:
        save_report_model(folder, self, {"kind": KIND, **asdict(self.config), **(extra or {})}, self.vocab)

    @classmethod
    def from_pretrained(cls, folder: Path | str, device: torch.device | str = "cpu") -> "AdaAtt":
        return load_report_model(folder, kind=KIND, config_cls=AdaAttConfig, model_cls=cls, device=device)
