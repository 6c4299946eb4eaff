"""R-CLIP losses against naive python-loop versions on seeded tiny tensors."""

import math

import pytest
import torch
from torch.nn import functional as F

from crrg_clip.models.clip_losses import RCLIPLoss, info_nce, symmetric_info_nce


def naive_ce(a, b, scale):
    """Mean over rows i of -log softmax_j(scale * <a_i, b_j>)[i], written out with loops."""
    total = 0.0
    n = len(a)
    for i in range(n):
        sims = [scale * sum(float(a[i][k]) * float(b[j][k]) for k in range(len(a[i]))) for j in range(n)]
        top = max(sims)
        log_z = top + math.log(sum(math.exp(s - top) for s in sims))
        total += log_z - sims[i]
    return total / n


def embeddings(seed, b=5, p=4):
    g = torch.Generator().manual_seed(seed)
    return [F.normalize(torch.randn(b, p, generator=g), dim=-1) for _ in range(4)]


@pytest.mark.parametrize("scale", [1.0, 14.285])
def test_info_nce_matches_naive(scale):
    a, b, _, _ = embeddings(0)
    s = torch.tensor(scale)
    assert float(info_nce(a, b, s)) == pytest.approx(naive_ce(a, b, scale), rel=1e-5)
    assert float(info_nce(b, a, s)) == pytest.approx(naive_ce(b, a, scale), rel=1e-5)
    assert float(symmetric_info_nce(a, b, s)) == pytest.approx(
        0.5 * (naive_ce(a, b, scale) + naive_ce(b, a, scale)), rel=1e-5)


def test_each_named_loss_and_total_match_naive():
    i1, i2, t1, t2 = embeddings(1)
    scale = 1 / 0.07
    out = RCLIPLoss(image_to_image_loss_weight=0.7, text_to_text_loss_weight=0.3, loss_ratio=2.0)(
        {"image1": i1, "image2": i2, "text1": t1, "text2": t2, "logit_scale": torch.tensor(scale)})
    mvs_terms = []
    for image in (i1, i2):
        for text in (t1, t2):
            mvs_terms += [naive_ce(image, text, scale), naive_ce(text, image, scale)]
    assert len(mvs_terms) == 8
    mvs = sum(mvs_terms) / 8
    icl = 0.5 * (naive_ce(i1, i2, scale) + naive_ce(i2, i1, scale))
    tcl = 0.5 * (naive_ce(t1, t2, scale) + naive_ce(t2, t1, scale))
    assert float(out["mvs"]) == pytest.approx(mvs, rel=1e-5)
    assert float(out["icl"]) == pytest.approx(icl, rel=1e-5)
    assert float(out["tcl"]) == pytest.approx(tcl, rel=1e-5)
    assert float(out["loss"]) == pytest.approx(2.0 * (mvs + 0.7 * icl + 0.3 * tcl), rel=1e-5)


def test_perfect_alignment_gives_small_loss_and_gradients_reach_the_scale():
    i1, _, _, _ = embeddings(2, b=4, p=8)
    eye = F.normalize(torch.eye(4, 8), dim=-1)
    scale = torch.tensor(50.0, requires_grad=True)
    out = RCLIPLoss()({"image1": eye, "image2": eye, "text1": eye, "text2": eye, "logit_scale": scale})
    assert float(out["loss"].detach()) < 1e-6
    out = RCLIPLoss()({"image1": i1, "image2": i1.flip(0), "text1": i1, "text2": i1, "logit_scale": scale})
    out["loss"].backward()
    assert scale.grad is not None and float(scale.grad) != 0.0
