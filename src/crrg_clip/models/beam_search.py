"""Greedy and beam-search decoding for the step-wise report decoders (S&T, AdaAtt).

A decoder provides ``start(images) -> state`` and ``step(tokens, state) -> (logits, state)``,
where ``state`` is a dict of tensors whose first dimension is the batch. Beam search keeps
``K`` hypotheses per image, scored by the sum of token log-probabilities (no length
penalty); a hypothesis that has emitted ``<eos>`` is finished and keeps its score. With
``K = 1`` it is greedy decoding.

Letters: B images, K beams, V vocabulary.
"""

from __future__ import annotations

import torch
from torch.nn import functional as F


def _reorder(state: dict[str, torch.Tensor], index: torch.Tensor) -> dict[str, torch.Tensor]:
    return {k: v.index_select(0, index) for k, v in state.items()}


def _cut(rows: list[list[int]], eos_id: int) -> list[list[int]]:
    return [row[: row.index(eos_id)] if eos_id in row else row for row in rows]


@torch.no_grad()
def greedy_decode(decoder, images: torch.Tensor, *, max_length: int, bos_id: int,
                  eos_id: int) -> list[list[int]]:
    """The most likely next token at every step; per image the ids before ``<eos>``."""
    state = decoder.start(images)
    tokens = torch.full((images.shape[0],), bos_id, dtype=torch.long, device=images.device)  # (B,)
    done = torch.zeros_like(tokens, dtype=torch.bool)  # (B,)
    out = []
    for _ in range(max_length):
        logits, state = decoder.step(tokens, state)  # (B, V)
        tokens = logits.argmax(dim=-1)  # (B,)
        out.append(tokens)
        done |= tokens == eos_id
        if bool(done.all()):
            break
    return _cut(torch.stack(out, dim=1).tolist(), eos_id)


@torch.no_grad()
def beam_search(decoder, images: torch.Tensor, *, beam_size: int, max_length: int, bos_id: int,
                eos_id: int) -> list[list[int]]:
    """The best of ``beam_size`` hypotheses per image; per image the ids before ``<eos>``."""
    batch, k = images.shape[0], beam_size
    device = images.device
    state = decoder.start(images)
    state = _reorder(state, torch.arange(batch, device=device).repeat_interleave(k))  # (B*K, ...)
    tokens = torch.full((batch * k,), bos_id, dtype=torch.long, device=device)  # (B*K,)
    scores = torch.full((batch, k), float("-inf"), device=device)  # (B, K)
    scores[:, 0] = 0.0  # all beams start identical: expand only the first
    finished = torch.zeros(batch * k, dtype=torch.bool, device=device)  # (B*K,)
    sequences = torch.empty((batch * k, 0), dtype=torch.long, device=device)  # (B*K, L)
    for _ in range(max_length):
        logits, state = decoder.step(tokens, state)  # (B*K, V)
        logp = F.log_softmax(logits.float(), dim=-1)  # (B*K, V)
        # a finished hypothesis can only repeat <eos>, at no cost
        logp = torch.where(finished[:, None], torch.full_like(logp, float("-inf")), logp)
        logp[finished, eos_id] = 0.0
        vocab = logp.shape[-1]
        candidates = (scores.reshape(-1, 1) + logp).reshape(batch, k * vocab)  # (B, K*V)
        scores, flat = candidates.topk(k, dim=-1)  # (B, K)
        source = (torch.arange(batch, device=device)[:, None] * k + flat // vocab).reshape(-1)  # (B*K,)
        tokens = (flat % vocab).reshape(-1)  # (B*K,)
        sequences = torch.cat([sequences[source], tokens[:, None]], dim=1)
        finished = finished[source] | (tokens == eos_id)
        state = _reorder(state, source)
        if bool(finished.all()):
            break
    best = scores.argmax(dim=-1) + torch.arange(batch, device=device) * k  # (B,)
    return _cut(sequences[best].tolist(), eos_id)


def decode(decoder, images: torch.Tensor, *, beam_size: int, max_length: int, bos_id: int,
           eos_id: int) -> list[list[int]]:
    if beam_size == 1:
        return greedy_decode(decoder, images, max_length=max_length, bos_id=bos_id, eos_id=eos_id)
    return beam_search(decoder, images, beam_size=beam_size, max_length=max_length, bos_id=bos_id,
                       eos_id=eos_id)
