"""The generator at GPT-2 medium size (healx/gpt-2-pubmed-medium's dimensions, random weights):
save_pretrained / from_pretrained round trip, one frozen-GPT-2 training step and one beam
generation on CPU. No hub: the tokenizer is a small BPE trained here (ids < 50257)."""

import pytest
import torch
from transformers import GPT2Config, GPT2LMHeadModel

from crrg_clip.models.demo_gpt2 import train_tokenizer
from crrg_clip.models.generator import (ConditioningConfig, LanguageModelLoss, PseudoSelfAttentionConditioning,
                                        RegionGenerator, collate_targets, encode_sentences)

pytestmark = pytest.mark.slow

MEDIUM = {"n_layer": 24, "n_embd": 1024, "n_head": 16, "vocab_size": 50257, "n_positions": 1024}
SENTENCES = ["the lungs are clear.", "no pleural effusion or pneumothorax.", "heart size is normal."]


def test_gpt2_medium_round_trip_train_step_and_generate(tmp_path):
    torch.manual_seed(0)
    tokenizer = train_tokenizer(SENTENCES * 3, vocab_size=300)
    config = GPT2Config(**MEDIUM, bos_token_id=tokenizer.eos_token_id, eos_token_id=tokenizer.eos_token_id)
    conditioning = PseudoSelfAttentionConditioning(ConditioningConfig(
        feature_dim=1024, hidden_dim=1024, n_layer=24, n_head=16, n_embd=1024))
    generator = RegionGenerator(GPT2LMHeadModel(config), conditioning, tokenizer)
    assert sum(p.numel() for p in generator.gpt2.parameters()) > 350e6
    assert len(generator.conditioning.uk) == 24 and generator.conditioning.uk[0].out_features == 1024

    # one training step with GPT-2 frozen (the paper's setting): only the conditioning moves
    generator.freeze_gpt2(True)
    generator.train()
    before_gpt2 = generator.gpt2.transformer.h[0].attn.c_attn.weight.detach().clone()
    before_uk = generator.conditioning.uk[5].weight.detach().clone()
    optimizer = torch.optim.AdamW(generator.conditioning.parameters(), lr=1e-3)
    batch = collate_targets(encode_sentences(generator.tokenizer, SENTENCES[:2], 16), generator.eos_token_id)
    features = torch.randn(2, 1024)
    logits = generator(features, batch["input_ids"], batch["attention_mask"])
    assert logits.shape[:2] == batch["input_ids"].shape and logits.shape[-1] == 50257
    loss = LanguageModelLoss()(logits, batch["labels"])["lm"]
    assert torch.isfinite(loss)
    loss.backward()
    optimizer.step()
    assert torch.equal(before_gpt2, generator.gpt2.transformer.h[0].attn.c_attn.weight)
    assert not torch.equal(before_uk, generator.conditioning.uk[5].weight)

    # save_pretrained / from_pretrained round trip of the whole generator, then one beam generation
    generator.eval()
    generator.save_pretrained(tmp_path / "generator")
    loaded = RegionGenerator.from_pretrained(tmp_path / "generator")
    one = features[:1]
    assert torch.equal(generator.generate(one, num_beams=2, max_new_tokens=3),
                       loaded.generate(one, num_beams=2, max_new_tokens=3))
