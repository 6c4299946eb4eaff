"""S&T and AdaAtt at config/paper.yaml's sizes (ResNet-50 at 224 px, 7x7 grid, LSTM 512,
embedding 512, a 4,000-word vocabulary like R2Gen's MIMIC-CXR threshold-10 vocabulary, 100
tokens): one Adam step with gradient clipping on CPU, then a short beam search."""

import dataclasses
from pathlib import Path

import pytest
import torch

from crrg_clip.config import load_config
from crrg_clip.models.beam_search import beam_search
from crrg_clip.models.generator import LanguageModelLoss, collate_targets
from crrg_clip.settings import stage_settings
from crrg_clip.train.report_baseline import build_model

pytestmark = pytest.mark.slow

PAPER = load_config(Path(__file__).resolve().parents[1] / "config" / "paper.yaml")
VOCAB = 4000


@pytest.mark.parametrize("kind", ["show_tell", "adaatt"])
def test_one_training_step_at_paper_size(kind):
    torch.manual_seed(0)
    # the paper's ImageNet weights file is not in the repository: random init at the same size
    settings = dataclasses.replace(stage_settings(PAPER, "report_baseline", baseline=kind), backbone_weights=None)
    assert (settings.backbone, settings.image_size, settings.hidden_dim, settings.max_length) == (
        "resnet50", 224, 512, 100)
    model = build_model(settings, VOCAB, pad_id=0).train()
    if kind == "adaatt":
        assert model.encoder(torch.zeros(1, 1, 224, 224)).shape == (1, 49, 2048)  # 7x7 regions of ResNet-50
    images = torch.randn(2, 1, settings.image_size, settings.image_size)
    batch = collate_targets([[1, *torch.randint(3, VOCAB, (settings.max_length - 1,)).tolist(), 1],
                             [1, 5, 6, 1]], pad_id=0)
    optimizer = torch.optim.Adam(model.parameters(), lr=settings.lr)
    logits = model(images, batch["input_ids"])
    assert logits.shape == (2, settings.max_length + 1, VOCAB)
    loss = LanguageModelLoss()(logits, batch["labels"])["lm"]
    loss.backward()
    torch.nn.utils.clip_grad_value_(model.parameters(), settings.grad_clip)
    assert max(float(p.grad.abs().max()) for p in model.parameters() if p.grad is not None) <= settings.grad_clip + 1e-6
    before = model.logits.weight.detach().clone()
    optimizer.step()
    assert not torch.equal(before, model.logits.weight)
    model.eval()
    rows = beam_search(model, images[:1], beam_size=settings.beam_size, max_length=5, bos_id=1, eos_id=1)
    assert len(rows) == 1 and len(rows[0]) <= 5
