"""ConVIRT: the loss against a naive loop on seeded tensors; the model's heads, max pooling,
frozen text layers and fixed temperature; the RSNA probe reads its image tower."""

import dataclasses
import math

import pytest
import torch

from crrg_clip.models.clip import load_clip_image_encoder
from crrg_clip.models.clip_losses import ConVIRTLoss
from crrg_clip.models.convirt import build_convirt_training
from crrg_clip.models.demo_bert import build_demo_bert
from test_settings import default_settings

CORPUS = ["The lungs are clear. No pleural effusion.", "Heart size is normal.",
          "Right lower lobe opacity concerning for pneumonia."] * 5
CONVIRT = {"temperature": 0.1, "image_to_text_weight": 0.75, "projection_dim": 8, "projection_hidden_dim": None,
           "frozen_text_layers": 1, "freeze_text_embeddings": True, "lr": 1e-4, "weight_decay": 1e-6}


def naive_convirt(image, text, tau, lam):
    """Equations (2)-(4) of the ConVIRT paper, one pair at a time with explicit cosines."""
    def cos(a, b):
        return float(a @ b) / (math.sqrt(float(a @ a)) * math.sqrt(float(b @ b)))

    n = image.shape[0]
    total = 0.0
    for i in range(n):
        v2u = -math.log(math.exp(cos(image[i], text[i]) / tau) / sum(math.exp(cos(image[i], text[k]) / tau)
                                                                    for k in range(n)))
        u2v = -math.log(math.exp(cos(text[i], image[i]) / tau) / sum(math.exp(cos(text[i], image[k]) / tau)
                                                                    for k in range(n)))
        total += lam * v2u + (1 - lam) * u2v
    return total / n


@pytest.mark.parametrize("tau,lam", [(0.1, 0.75), (0.5, 0.3)])
def test_convirt_loss_matches_naive_loop(tau, lam):
    g = torch.Generator().manual_seed(0)
    image = torch.nn.functional.normalize(torch.randn(6, 5, generator=g, dtype=torch.float64), dim=-1)
    text = torch.nn.functional.normalize(torch.randn(6, 5, generator=g, dtype=torch.float64), dim=-1)
    out = ConVIRTLoss(tau, lam)({"image": image, "text": text})
    assert float(out["loss"]) == pytest.approx(naive_convirt(image, text, tau, lam), rel=1e-6)
    assert float(out["loss"]) == pytest.approx(lam * float(out["image_to_text"]) + (1 - lam) * float(out["text_to_image"]))
    # the two directions differ (lambda matters) on asymmetric data
    assert float(out["image_to_text"]) != pytest.approx(float(out["text_to_image"]))


@pytest.fixture(scope="module")
def bert_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("bert")
    build_demo_bert(CORPUS, out, vocab_size=120, bert={"num_hidden_layers": 2, "hidden_size": 16,
                                                       "num_attention_heads": 2, "intermediate_size": 32}, seed=0)
    return out


def make(bert_dir, **overrides):
    torch.manual_seed(0)
    settings = dataclasses.replace(default_settings("convirt", init="random_init"), image_encoder="resnet18",
                                   text_model=str(bert_dir))
    return build_convirt_training(settings, {**CONVIRT, **overrides})


def test_model_heads_pooling_freezing_and_temperature(bert_dir, tmp_path):
    model, tokenizer, criterion, optimizer = make(bert_dir)
    assert isinstance(model.image_projection[1], torch.nn.ReLU) and model.image_projection[2].out_features == 8
    text = model.text_encoder
    assert not any(p.requires_grad for p in text.embeddings.parameters())
    assert not any(p.requires_grad for p in text.encoder.layer[0].parameters())
    assert all(p.requires_grad for p in text.encoder.layer[1].parameters())
    assert not model.logit_scale.requires_grad and float(1 / model.scale()) == pytest.approx(0.1)
    trained = {id(p) for group in optimizer.param_groups for p in group["params"]}
    assert id(model.logit_scale) not in trained and isinstance(optimizer, torch.optim.Adam)

    model.eval()
    # max pooling ignores padding: the same text alone or padded next to a longer one
    short, long = "Heart size is normal.", "Right lower lobe opacity concerning for pneumonia."
    alone = tokenizer([short], return_tensors="pt")
    padded = tokenizer([short, long], return_tensors="pt", padding=True)
    with torch.no_grad():
        a = model.encode_text(alone["input_ids"], alone["attention_mask"])
        b = model.encode_text(padded["input_ids"], padded["attention_mask"])
    torch.testing.assert_close(a[0], b[0], rtol=1e-4, atol=1e-5)

    images = torch.randn(3, 1, 32, 32)
    batch = tokenizer(CORPUS[:3], return_tensors="pt", padding=True)
    with torch.no_grad():
        out = model(images, images, dict(batch), dict(batch))
    assert out["image"].shape == out["text"].shape == (3, 8)
    assert torch.allclose(out["image"].norm(dim=-1), torch.ones(3), atol=1e-5)
    assert float(criterion(out)["loss"]) > 0

    model.save_pretrained(tmp_path / "convirt", extra={"loss": "convirt"}, tokenizer=tokenizer)
    encoder = load_clip_image_encoder(tmp_path / "convirt").eval()
    with torch.no_grad():
        torch.testing.assert_close(encoder(images), model.image_encoder(images))


def test_frozen_layer_count_is_checked(bert_dir):
    with pytest.raises(ValueError, match="only 2 layers"):
        make(bert_dir, frozen_text_layers=6)


@pytest.mark.parametrize("hidden_dim", [None, 12])
def test_convirt_folder_loads_back_as_convirt(bert_dir, tmp_path, hidden_dim):
    from crrg_clip.models.clip import CLIPModel, ImageEncoder, load_text_encoder
    from crrg_clip.models.convirt import ConVIRTModel

    torch.manual_seed(0)
    text_encoder, tokenizer = load_text_encoder(bert_dir)
    model = ConVIRTModel(ImageEncoder("resnet18"), text_encoder, projection_dim=8, hidden_dim=hidden_dim,
                         temperature=0.1, sep_token_id=tokenizer.sep_token_id, frozen_text_layers=1).eval()
    model.save_pretrained(tmp_path / "convirt", extra={"loss": "convirt", "temperature": 0.1}, tokenizer=tokenizer)
    loaded = CLIPModel.from_pretrained(tmp_path / "convirt")
    assert isinstance(loaded, ConVIRTModel) and not loaded.training
    assert loaded.image_projection[0].out_features == (hidden_dim or 512)
    assert float(1 / loaded.scale()) == pytest.approx(0.1) and not loaded.logit_scale.requires_grad
    images, batch = torch.randn(3, 1, 32, 32), dict(tokenizer(CORPUS[:3], return_tensors="pt", padding=True))
    with torch.no_grad():
        expected, got = model(images, images, batch, batch), loaded(images, images, batch, batch)
    assert all(torch.equal(expected[k], got[k]) for k in expected)
