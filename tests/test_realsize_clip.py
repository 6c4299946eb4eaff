"""Real-size R-CLIP: ResNet-50 + a BERT-base of Bio_ClinicalBERT's dimensions, random weights.

The weights are saved and reloaded the way ``from_pretrained`` reads a local folder (no hub),
then one training step runs on CPU with the R-CLIP loss.
"""

import pytest
import torch

from crrg_clip.models.clip import CLIPModel, build_clip
from crrg_clip.models.clip_losses import RCLIPLoss
from crrg_clip.models.demo_bert import tokenizer_from_vocab
from crrg_clip.train.clip import param_groups

pytestmark = pytest.mark.slow

BIO_CLINICAL_BERT = dict(vocab_size=28996, hidden_size=768, num_hidden_layers=12, num_attention_heads=12,
                         intermediate_size=3072, max_position_embeddings=512, type_vocab_size=2)
WORDS = ("the lungs are clear no pleural effusion or pneumothorax heart size is normal there small left right "
         "lower lobe opacity concerning for pneumonia mild cardiomegaly focal consolidation").split()


@pytest.fixture(scope="module")
def bert_base_dir(tmp_path_factory):
    from transformers import BertConfig, BertModel

    folder = tmp_path_factory.mktemp("bio_clinical_bert_like")
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    vocab = specials + sorted(set(WORDS) | {w.capitalize() for w in WORDS} | set(".,"))
    vocab += [f"[unused{i}]" for i in range(BIO_CLINICAL_BERT["vocab_size"] - len(vocab))]
    tokenizer = tokenizer_from_vocab(vocab)
    torch.manual_seed(0)
    BertModel(BertConfig(**BIO_CLINICAL_BERT)).save_pretrained(str(folder))  # with a pooler, like the hub files
    tokenizer.save_pretrained(str(folder))
    return folder


def test_real_size_dimensions_one_step_and_reload(bert_base_dir, tmp_path):
    torch.manual_seed(0)
    model, tok = build_clip(image_encoder="resnet50", image_weights=None, text_model=bert_base_dir,
                            projection_dim=512, temperature_init=0.07)
    assert len(tok) == 28996 and model.text_encoder.config.hidden_size == 768
    assert model.text_encoder.config.num_hidden_layers == 12
    assert model.image_encoder.feature_dim == 2048 and model.image_projection.in_features == 2048
    assert model.text_projection.in_features == 768 and model.text_projection.out_features == 512

    texts = ["The lungs are clear.", "Small left pleural effusion.", "Right lower lobe opacity."]
    t1 = dict(tok(texts, padding=True, truncation=True, max_length=256, return_tensors="pt"))
    t2 = dict(tok(texts[::-1], padding=True, truncation=True, max_length=256, return_tensors="pt"))
    t1 = {k: t1[k] for k in ("input_ids", "attention_mask")}
    t2 = {k: t2[k] for k in ("input_ids", "attention_mask")}
    x1, x2 = torch.randn(3, 1, 224, 224), torch.randn(3, 1, 224, 224)
    optimizer = torch.optim.AdamW(param_groups(model, 1e-4), lr=5e-5)
    model.train()
    out = model(x1, x2, t1, t2)
    assert out["image1"].shape == (3, 512) and out["text2"].shape == (3, 512)
    losses = RCLIPLoss(1.0, 0.5, 1.0)(out)
    before = model.text_projection.weight.detach().clone()
    losses["loss"].backward()
    optimizer.step()
    assert torch.isfinite(losses["loss"]) and not torch.equal(before, model.text_projection.weight)

    model.eval()
    model.save_pretrained(tmp_path / "clip", tokenizer=tok)
    loaded = CLIPModel.from_pretrained(tmp_path / "clip")
    assert loaded.folder_config["text_config"]["vocab_size"] == 28996
    with torch.no_grad():
        assert torch.allclose(model.encode_text(**t1), loaded.encode_text(**t1), atol=1e-5)
        assert torch.allclose(model.encode_image(x1[:1]), loaded.encode_image(x1[:1]), atol=1e-5)
