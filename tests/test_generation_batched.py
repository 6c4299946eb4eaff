"""Generation batched across regions and images gives the sentences of one call per region.

A small demo-like generator (the demo GPT-2 class, its own trained tokenizer, random weights
scaled so that sentences differ) with beam search: batch sizes 1, 7 and 64 over regions of
many images must give the same sentences, in the same order.
"""

import pandas as pd
import pytest
import torch
from torch import nn

from crrg_clip.generate import generate_for_pairs, predict_regions
from crrg_clip.models.demo_gpt2 import build_demo_gpt2, save_demo_gpt2
from crrg_clip.models.generator import build_generator
from crrg_clip.regions import NUM_REGIONS

SENTENCES = [
    "the lungs are clear.", "no pleural effusion or pneumothorax.", "heart size is normal.",
    "mild cardiomegaly is seen.", "there is a small left pleural effusion.", "the mediastinum is unremarkable.",
    "right lower lobe opacity may reflect atelectasis.", "no acute osseous abnormality.",
]
FEATURE_DIM = 8
CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def generator(tmp_path_factory, one_torch_thread):
    folder = tmp_path_factory.mktemp("gpt2")
    model, tokenizer = build_demo_gpt2(SENTENCES * 5, vocab_size=320, n_layer=2, n_embd=32, n_head=4,
                                       n_positions=64, seed=0)
    save_demo_gpt2(folder, model, tokenizer)
    torch.manual_seed(0)
    generator = build_generator(str(folder), feature_dim=FEATURE_DIM, hidden_dim=16)
    with torch.no_grad():  # a random GPT-2 is nearly uniform; scale it so that sentences differ
        for parameter in generator.parameters():
            parameter.mul_(3.0)
    return generator.eval()


def features(n, seed=1):
    return torch.randn(n, FEATURE_DIM, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("num_beams", [1, 4])
def test_batch_size_does_not_change_any_sentence(generator, num_beams):
    rows = features(70)  # > 64: the last call is a short one
    by_batch = {b: generate_for_pairs(generator, rows, num_beams=num_beams, max_new_tokens=10, batch_size=b,
                                      device=CPU, progress=False) for b in (1, 7, 64)}
    assert len(by_batch[1]) == 70
    assert len(set(by_batch[1])) > 10, "the test model must write varied sentences"
    assert by_batch[7] == by_batch[1]
    assert by_batch[64] == by_batch[1]


def test_sentences_differ_in_length_so_early_finishers_are_padded(generator):
    """Guard for the test above: rows of one call end at different steps (EOS fill is exercised)."""
    ids = generator.generate(features(20), num_beams=4, max_new_tokens=10)  # (B, S)
    eos = generator.eos_token_id
    lengths = {row.index(eos) if eos in row else len(row) for row in ids.tolist()}
    assert len(lengths) > 1


def test_a_row_does_not_depend_on_its_neighbours(generator):
    rows = features(9)
    alone = generate_for_pairs(generator, rows[4:5], num_beams=4, max_new_tokens=10, batch_size=1, device=CPU,
                               progress=False)
    shuffled = rows[torch.tensor([8, 2, 4, 0, 6])]
    together = generate_for_pairs(generator, shuffled, num_beams=4, max_new_tokens=10, batch_size=64, device=CPU,
                                  progress=False)
    assert together[2] == alone[0]


class StandInSelector(nn.Module):
    """The selector interface (project / select) for tests only."""

    def __init__(self, in_channels=6):
        super().__init__()
        torch.manual_seed(1)
        self.projection = nn.Linear(in_channels, FEATURE_DIM)

    def project(self, x):
        return self.projection(x.float())

    @torch.no_grad()
    def select(self, x, detected=None):
        logits = x[..., 0].float()
        selected = logits > 0
        if detected is not None:
            selected &= detected.bool()
        return logits, selected


def test_predictions_are_the_same_for_any_generation_batch(generator):
    n_images = 6
    g = torch.Generator().manual_seed(3)
    region_features = {"dicom_id": [f"img{i}" for i in range(n_images)],
                       "features": torch.randn(n_images, NUM_REGIONS, 6, generator=g).half(),
                       "boxes": torch.rand(n_images, NUM_REGIONS, 4, generator=g),
                       "detected": torch.rand(n_images, NUM_REGIONS, generator=g) > 0.2}
    frames = [predict_regions(generator, StandInSelector(), region_features, None, num_beams=4, max_new_tokens=8,
                              batch_size=b, device=CPU, progress=False) for b in (1, 7, 64)]
    assert frames[0]["selected"].sum() > 20  # regions of several images share a call at batch 64
    pd.testing.assert_frame_equal(frames[1], frames[0])
    pd.testing.assert_frame_equal(frames[2], frames[0])
