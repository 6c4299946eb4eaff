"""Per-item random generators: augmentation depends only on (seed, epoch, item), so a
resumed or re-ordered run draws the same numbers."""

import torch


def item_generator(seed: int, epoch: int, item: int) -> torch.Generator:
    return torch.Generator().manual_seed(((seed * 1_000_003 + epoch) * 1_000_033 + item) % (2**63 - 1))


def uniform(g: torch.Generator, low: float, high: float) -> float:
    return float(low + (high - low) * torch.rand((), generator=g))
