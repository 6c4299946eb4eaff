"""RSNA linear probe: frozen encoder in eval mode, tiny subsets still train, model selection."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from crrg_clip.models.clip import ImageEncoder
from crrg_clip.models.probe import LinearProbe, build_encoder
from crrg_clip.train.probe import crop_box, eval_view, train_probe as _train_probe, train_view
from test_settings import default_settings


def probe_settings(**values):
    """The schema's probe settings on a ResNet-18 (dataset normalisation 0.471 / 0.302)."""
    import dataclasses

    return dataclasses.replace(default_settings("probe"), arch="resnet18", **values)


def train_probe(*, cache_images, cache_index, encoder_kind, out_dir, checkpoint_dir, settings, device, seed=0,
                progress=False, **io):
    """Rule train_probe's call on a cache and an output folder."""
    inputs = {"cache_images": cache_images, "cache_index": cache_index, **io}
    return _train_probe(settings, inputs, {"predictions": Path(out_dir) / "predictions_test.parquet"},
                        encoder=encoder_kind, device=device, seed=seed, checkpoint_dir=checkpoint_dir,
                        progress=progress)


def rsna_cache(tmp_path, n=30, size=48, n_train_subset=3, seed=0):
    """Positives carry a bright disc; splits 50 / 25 / 25 %; ``n_train_subset`` training images used."""
    rng = np.random.default_rng(seed)
    labels = np.array([i % 2 for i in range(n)])
    images = (rng.random((n, size, size)) * 60).astype(np.uint8)
    yy, xx = np.mgrid[:size, :size]
    for i in np.flatnonzero(labels):
        cy, cx = rng.integers(12, size - 12, 2)
        images[i][(yy - cy) ** 2 + (xx - cx) ** 2 < 36] = 230
    split = np.array(["train"] * (n // 2) + ["valid"] * (n // 4) + ["test"] * (n - n // 2 - n // 4))
    in_subset = np.zeros(n, bool)
    in_subset[np.flatnonzero(split == "train")[:n_train_subset]] = True
    index = pd.DataFrame({"patientId": [f"p{i:03d}" for i in range(n)], "row": np.arange(n), "label": labels,
                          "split": split, "in_train_subset": in_subset})
    np.save(tmp_path / "images.npy", images)
    index.to_parquet(tmp_path / "index.parquet", index=False)
    return tmp_path / "images.npy", tmp_path / "index.parquet"


def test_encoder_stays_frozen_and_in_eval_mode_after_training_steps():
    torch.manual_seed(0)
    probe = LinearProbe(ImageEncoder("resnet18"))
    before = {k: v.clone() for k, v in probe.encoder.state_dict().items()}
    optimizer = torch.optim.AdamW([p for p in probe.parameters() if p.requires_grad], lr=0.1)
    probe.train()
    for _ in range(3):
        loss = torch.nn.functional.binary_cross_entropy_with_logits(probe(torch.randn(4, 1, 32, 32)), torch.ones(4))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert probe.training and probe.head.training and not probe.encoder.training
    assert not any(m.training for m in probe.encoder.modules())
    assert all(not p.requires_grad for p in probe.encoder.parameters())
    after = probe.encoder.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)  # BN running stats included
    assert [n for n, p in probe.named_parameters() if p.requires_grad] == ["head.weight", "head.bias"]


def test_three_images_with_batch_32_train_every_epoch_and_write_outputs(tmp_path):
    images, index = rsna_cache(tmp_path, n_train_subset=3)
    settings = probe_settings(epochs=3, batch_size=32, lr=1e-2, image_size=32)
    out = tmp_path / "probe"
    result = train_probe(cache_images=images, cache_index=index, encoder_kind="random_init", out_dir=out,
                         checkpoint_dir=tmp_path / "ckpt", settings=settings,
                         seed=0, device=torch.device("cpu"), progress=False)
    metrics = pd.read_csv(out / "metrics.tsv", sep="\t")
    assert len(metrics) == 3 and metrics["train_loss"].notna().all()
    assert metrics["train_loss"].gt(0).all()
    predictions = pd.read_parquet(out / "predictions_test.parquet")
    assert list(predictions.columns) == ["patientId", "label", "prob"]
    assert len(predictions) == 8 and predictions["prob"].between(0, 1).all()
    # model selection: the kept epoch is the one with the lowest validation loss
    assert result["best_epoch"] == int(metrics["val_loss"].idxmin())
    config = json.loads((out / "config.json").read_text())
    assert config["best_epoch"] == result["best_epoch"]
    probe = LinearProbe.from_pretrained(out)
    x = torch.stack([(eval_view(np.load(images)[i], 32) - 0.471) / 0.302 for i in range(22, 30)])
    assert np.allclose(probe.predict_proba(x).numpy(), predictions["prob"].to_numpy(), atol=1e-5)
    assert json.loads((out / "run.json").read_text())["n_train"] == 3


def test_probe_learns_a_separable_signal(tmp_path):
    images, index = rsna_cache(tmp_path, n=64, n_train_subset=32)
    settings = probe_settings(epochs=6, batch_size=8, lr=5e-2, image_size=32)
    result = train_probe(cache_images=images, cache_index=index, encoder_kind="random_init",
                         out_dir=tmp_path / "p", checkpoint_dir=tmp_path / "c", settings=settings,
                         seed=0, device=torch.device("cpu"), progress=False)
    assert result["test_auc"] > 0.75


def test_augmentation_is_seeded_and_in_range():
    image = (np.arange(64 * 64) % 251).astype(np.uint8).reshape(64, 64)
    g1, g2 = torch.Generator().manual_seed(5), torch.Generator().manual_seed(5)
    jitter = {"brightness": 0.1, "contrast": 0.2, "saturation": 0.2, "hue": 0.1}
    a = train_view(image, 32, (0.8, 1.0), jitter, g1)
    b = train_view(image, 32, (0.8, 1.0), jitter, g2)
    assert a.shape == (1, 32, 32) and torch.equal(a, b) and float(a.min()) >= 0 and float(a.max()) <= 1
    g = torch.Generator().manual_seed(0)
    for _ in range(50):
        top, left, h, w = crop_box(64, 64, (0.8, 1.0), g)
        assert 0.8 * 64 * 64 * 0.97 <= h * w <= 64 * 64 and top + h <= 64 and left + w <= 64


def test_imagenet_init_needs_weights_and_random_init_is_seeded():
    with pytest.raises(ValueError, match="image_weights"):
        build_encoder("imagenet_init", arch="resnet18", seed=0)
    a = build_encoder("random_init", arch="resnet18", seed=1)
    b = build_encoder("random_init", arch="resnet18", seed=1)
    assert torch.equal(a.trunk.conv1.weight, b.trunk.conv1.weight)


def test_standardised_head_is_a_linear_function_of_the_raw_features():
    torch.manual_seed(0)
    probe = LinearProbe(ImageEncoder("resnet18"))
    features = torch.rand(40, probe.encoder.feature_dim) * torch.linspace(0.5, 5.0, probe.encoder.feature_dim)
    features[:, 0] = 0.3  # a dead feature: constant on these images
    plain = probe.classify(features)
    assert torch.allclose(plain, probe.head(features).squeeze(-1))  # buffers 0 / 1: the plain head
    probe.set_feature_statistics(features)
    standardised = (features - features.mean(0)) / probe.feature_std
    assert torch.allclose(standardised[:, 1:].std(0, unbiased=False), torch.ones(features.shape[1] - 1), atol=1e-3)
    # the dead feature's std is floored (0.1 x median), so a small change cannot explode it
    assert float(probe.feature_std[0]) == pytest.approx(0.1 * float(features.std(0, unbiased=False).median()))
    # folded into one Linear layer: w / std on the raw features, bias shifted by the mean
    w = probe.head.weight[0] / probe.feature_std
    b = probe.head.bias - (w * probe.feature_mean).sum()
    assert torch.allclose(probe.classify(features), features @ w + b, atol=1e-4)


def test_standardize_setting_stores_training_statistics_in_the_model_folder(tmp_path):
    images, index = rsna_cache(tmp_path, n=40, n_train_subset=12)
    settings = probe_settings(epochs=2, batch_size=8, lr=1e-2, image_size=32, standardize=True)
    out = tmp_path / "probe"
    train_probe(cache_images=images, cache_index=index, encoder_kind="random_init", out_dir=out,
                checkpoint_dir=tmp_path / "ckpt", settings=settings,
                seed=0, device=torch.device("cpu"), progress=False)
    probe = LinearProbe.from_pretrained(out)
    train_rows = pd.read_parquet(index).query("split == 'train' and in_train_subset")["row"]
    x = torch.stack([(eval_view(np.load(images)[i], 32) - 0.471) / 0.302 for i in train_rows])
    features = probe.features(x)
    assert torch.allclose(probe.feature_mean, features.mean(0), atol=1e-4)
    assert not torch.equal(probe.feature_std, torch.ones_like(probe.feature_std))
    predictions = pd.read_parquet(out / "predictions_test.parquet")
    test_rows = pd.read_parquet(index).query("split == 'test'")["row"]
    x_test = torch.stack([(eval_view(np.load(images)[i], 32) - 0.471) / 0.302 for i in test_rows])
    assert np.allclose(probe.predict_proba(x_test).numpy(), predictions["prob"].to_numpy(), atol=1e-5)


# --- Appendix Table 6 optimiser, CLAHE, ImageNet normalisation ------------------------------

def test_probe_optimizer_follows_the_schedule_setting():
    from crrg_clip.train.probe import head_optimizer

    head = torch.nn.Linear(4, 1)
    optimizer, scheduler = head_optimizer(head, probe_settings(lr=1.0, weight_decay=1e-4, schedule="cosine",
                                                              warmup_epochs=1, epochs=5), steps_per_epoch=4)
    assert all(group["weight_decay"] == pytest.approx(1e-4) for group in optimizer.param_groups)
    lrs = []
    for _ in range(20):
        lrs.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    assert lrs[:4] == pytest.approx([0.25, 0.5, 0.75, 1.0])  # one warm-up epoch of 4 steps
    assert all(a >= b for a, b in zip(lrs[4:], lrs[5:])) and lrs[-1] < 0.05  # cosine to 0
    optimizer, scheduler = head_optimizer(head, probe_settings(lr=0.5), steps_per_epoch=4)
    assert scheduler is None and optimizer.param_groups[0]["weight_decay"] == 0.0


def test_cosine_probe_records_a_decaying_lr(tmp_path):
    images, index = rsna_cache(tmp_path, n=40, n_train_subset=12)
    settings = probe_settings(epochs=4, batch_size=4, lr=1e-2, image_size=32, schedule="cosine", warmup_epochs=1,
                             weight_decay=1e-4)
    out = tmp_path / "probe"
    train_probe(cache_images=images, cache_index=index, encoder_kind="random_init", out_dir=out,
                checkpoint_dir=tmp_path / "ckpt", settings=settings,
                seed=0, device=torch.device("cpu"), progress=False)
    lr = pd.read_csv(out / "metrics.tsv", sep="\t")["lr"].tolist()
    assert lr[0] == pytest.approx(1e-2) and lr[1] > lr[2] > lr[3] and lr[3] < 1e-3


def test_clahe_is_opencv_clahe_on_the_8bit_crop_and_only_in_training_views():
    import cv2

    from crrg_clip.data.clahe import CLAHEConfig

    rng = np.random.default_rng(0)
    image = (rng.random((32, 32)) * 80 + 40).astype(np.uint8)
    always = CLAHEConfig(p=1.0, clip_limit=(2.0, 2.0), tile_grid_size=4)
    # full-area crop at the same size: the crop is the image itself, so CLAHE's effect is exact
    x = train_view(image, 32, (1.0, 1.0), {}, torch.Generator().manual_seed(1), clahe=always)
    expected = cv2.createCLAHE(clipLimit=2.0, tileGridSize=(4, 4)).apply(image).astype(np.float32) / 255
    assert np.allclose(x[0].numpy(), expected, atol=1e-6)
    plain = train_view(image, 32, (1.0, 1.0), {}, torch.Generator().manual_seed(1))
    assert np.allclose(plain[0].numpy(), image / 255, atol=1e-6)
    # p = 0.5: about half of the views are equalised, each draw from the item's generator
    half = CLAHEConfig(p=0.5, clip_limit=(1.0, 4.0), tile_grid_size=4)
    changed = [not torch.allclose(train_view(image, 32, (1.0, 1.0), {}, torch.Generator().manual_seed(s), clahe=half),
                                  plain, atol=1e-6) for s in range(40)]
    assert 10 <= sum(changed) <= 30


def test_imagenet_normalisation_gives_rgb_inputs_with_imagenet_statistics(tmp_path):
    from crrg_clip.data.normalize import IMAGENET_MEAN, IMAGENET_STD, normalization

    x = torch.full((1, 4, 4), 0.5)
    out = normalization("imagenet")(x)
    assert out.shape == (3, 4, 4)
    assert torch.allclose(out[:, 0, 0], (0.5 - torch.tensor(IMAGENET_MEAN)) / torch.tensor(IMAGENET_STD))
    grey = normalization("dataset", {"mean": 0.471, "std": 0.302})(x)
    assert grey.shape == (1, 4, 4) and torch.allclose(grey, (x - 0.471) / 0.302)
    images, index = rsna_cache(tmp_path, n=20, n_train_subset=4)
    out_dir = tmp_path / "probe"
    train_probe(cache_images=images, cache_index=index, encoder_kind="random_init", out_dir=out_dir,
                checkpoint_dir=tmp_path / "ckpt", settings=probe_settings(epochs=1, image_size=32, normalization="imagenet"), seed=0,
                device=torch.device("cpu"), progress=False)
    config = json.loads((out_dir / "config.json").read_text())
    assert config["normalize"] == {"kind": "imagenet", "mean": list(IMAGENET_MEAN), "std": list(IMAGENET_STD)}
    probe = LinearProbe.from_pretrained(out_dir)
    test_rows = pd.read_parquet(index).query("split == 'test'")["row"]
    x = torch.stack([normalization("imagenet")(eval_view(np.load(images)[i], 32)) for i in test_rows])
    predictions = pd.read_parquet(out_dir / "predictions_test.parquet")
    assert np.allclose(probe.predict_proba(x).numpy(), predictions["prob"].to_numpy(), atol=1e-5)


def test_probe_from_pretrained_is_the_saved_probe_in_eval_mode(tmp_path):
    torch.manual_seed(0)
    probe = LinearProbe(ImageEncoder("resnet18"))
    probe.set_feature_statistics(torch.randn(16, 512) * 2 + 1)
    probe.save_pretrained(tmp_path / "probe", {"image_size": 32, "normalize": {"mean": 0.5, "std": 0.25}})
    loaded = LinearProbe.from_pretrained(tmp_path / "probe")
    assert not any(m.training for m in loaded.modules()) and loaded.folder_config["image_size"] == 32
    x = torch.randn(2, 1, 32, 32)
    assert torch.equal(loaded.predict_proba(x), probe.eval().predict_proba(x))
