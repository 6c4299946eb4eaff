"""A MarianMTModel at opus-mt-en-it size: random weights, save/load round trip, one step.

The dimensions are those of Helsinki-NLP/opus-mt-en-it's config.json as we know it (not
downloadable here; no hub): d_model 512, 6 encoder + 6 decoder layers, 8 attention heads
each, FFN 2048, swish activation, vocab_size 80035 with pad = decoder start = 80034 and
eos = 0, sinusoidal (static) positions up to 512, scaled embeddings, shared and tied
embeddings. About 85.6M parameters (0.5M of them the fixed sinusoidal positions).
"""

from __future__ import annotations

import json

import pytest
import torch

from crrg_clip import backtranslate as bt
from crrg_clip.models import demo_marian as dm

pytestmark = pytest.mark.slow

OPUS_MT_EN_IT = {
    "encoder_layers": 6, "decoder_layers": 6, "d_model": 512,
    "encoder_attention_heads": 8, "decoder_attention_heads": 8,
    "encoder_ffn_dim": 2048, "decoder_ffn_dim": 2048,
}
VOCAB_SIZE = 80035
SENTENCES = [
    "The heart size is normal.", "There is no pleural effusion.", "No pneumothorax is seen.",
    "Mild cardiomegaly is present.", "The lungs are clear.", "Patchy opacity at the left lung base.",
]


def test_opus_mt_size_marian_round_trip_step_and_translation(tmp_path):
    from transformers import MarianMTModel, MarianTokenizer

    torch.manual_seed(0)
    source = dm.train_sentencepiece(SENTENCES * 4, 120)
    italian = [dm.apply_lexicon(s, dm.build_lexicon(SENTENCES)) for s in SENTENCES]
    target = dm.train_sentencepiece(italian * 4, 120)
    vocab = dm.joint_vocab(source, target)
    del vocab["<pad>"]
    # fill up to the real size with placeholder pieces (a random model emits any id)
    vocab.update({f"▁x{i}": i for i in range(len(vocab), VOCAB_SIZE - 1)})
    vocab["<pad>"] = VOCAB_SIZE - 1  # opus-mt layout: the pad id is the last of the 80035
    dm.write_tokenizer_folder(tmp_path, source, target, vocab, "en", "it")

    config = dm.marian_config(VOCAB_SIZE, OPUS_MT_EN_IT, max_positions=512)
    model = MarianMTModel(config)
    n_params = sum(p.numel() for p in model.parameters())
    assert 84e6 < n_params < 87e6, n_params  # 85.6M: 41.0M shared embeddings, 18.9M encoder, 25.2M decoder, 0.5M static positions
    assert (config.d_model, config.encoder_layers, config.decoder_layers, config.encoder_ffn_dim) == (512, 6, 6, 2048)
    model.save_pretrained(str(tmp_path))
    assert json.loads((tmp_path / "config.json").read_text())["vocab_size"] == VOCAB_SIZE

    tokenizer = MarianTokenizer.from_pretrained(str(tmp_path))
    loaded = MarianMTModel.from_pretrained(str(tmp_path))
    original = model.state_dict()
    for name, tensor in loaded.state_dict().items():
        assert torch.equal(tensor, original[name]), name
    assert tokenizer.pad_token_id == VOCAB_SIZE - 1

    # one training step on CPU: finite loss, the weights move
    batch = tokenizer(SENTENCES, text_target=italian, padding=True, return_tensors="pt")
    labels = batch["labels"].masked_fill(batch["labels"] == tokenizer.pad_token_id, -100)  # (B, T)
    loaded.train()
    optimizer = torch.optim.AdamW(loaded.parameters(), lr=1e-4)
    before = loaded.model.encoder.layers[0].fc1.weight.detach().clone()
    loss = loaded(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], labels=labels).loss
    assert torch.isfinite(loss)
    loss.backward()
    optimizer.step()
    assert not torch.equal(before, loaded.model.encoder.layers[0].fc1.weight)

    # one translation through the same code path the workflow uses
    loaded.eval()
    settings = bt.TranslationRequests(num_beams=2, do_sample=True, temperature=0.7, batch_size=2, max_length=12, seed=0)
    translator = bt.MarianTranslator(str(tmp_path), "cpu", settings)
    out = translator.translate_batch(SENTENCES[:2])
    assert len(out) == 2 and all(isinstance(t.text, str) for t in out)
