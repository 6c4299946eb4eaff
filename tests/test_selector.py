"""RRG stage 2: selection / abnormal losses against naive versions, decision rule, model folder,
region-feature files, and the detector -> features -> selector chain on a tiny cache."""

import json

import numpy as np
import pandas as pd
import pytest
import torch

from crrg_clip.models.selector import (
    LOSS_WEIGHTS, RegionSelector, SelectorConfig, masked_bce, total_loss,
)
from crrg_clip.region_features import load_region_features, save_region_features
from crrg_clip.regions import NUM_REGIONS
from crrg_clip.train.loop import Schedule
from crrg_clip.train.selector import SelectorData, SelectorTrainer, selection_metrics

R = NUM_REGIONS


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def naive_masked_bce(logits, targets, mask, pos_weight):
    total, count = 0.0, 0
    for x, y, m in zip(logits.flatten().tolist(), targets.flatten().tolist(), mask.flatten().tolist()):
        if not m:
            continue
        p = 1 / (1 + np.exp(-x))
        total += -(pos_weight * y * np.log(p) + (1 - y) * np.log(1 - p))
        count += 1
    return total / max(count, 1)


def test_masked_bce_matches_naive():
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(3, R, generator=g)
    targets = torch.rand(3, R, generator=g) > 0.6
    mask = torch.rand(3, R, generator=g) > 0.3
    for pos_weight in (1.0, 2.2, 6.0):
        got = masked_bce(logits, targets, mask, pos_weight)
        assert got.item() == pytest.approx(naive_masked_bce(logits, targets.float(), mask, pos_weight), rel=1e-5)
    empty = masked_bce(logits.requires_grad_(), targets, torch.zeros_like(mask), 2.0)
    assert empty.item() == 0.0
    empty.backward()  # an image with nothing detected still yields a usable (zero) loss


def make_selector(in_channels=16, dim=8, abnormal=True, threshold=-1.0):
    torch.manual_seed(0)
    return RegionSelector(SelectorConfig(in_channels=in_channels, region_feature_dim=dim, abnormal_classifier=abnormal,
                                         selection_pos_weight=2.0, abnormal_pos_weight=6.0,
                                         selection_threshold=threshold))


def test_structure_losses_and_weights():
    model = make_selector()
    assert [m.out_features for m in model.select_head if isinstance(m, torch.nn.Linear)] == [512, 128, 1]
    assert model.project(torch.randn(2, R, 16)).shape == (2, R, 8)
    feats = torch.randn(2, R, 16)
    has_sentence, is_abnormal = torch.rand(2, R) > 0.5, torch.rand(2, R) > 0.8
    detected = torch.ones(2, R, dtype=torch.bool)
    losses = model(feats, has_sentence, is_abnormal, detected)
    assert set(losses) == {"select", "abnormal"}
    logits = model.logits(feats)
    torch.testing.assert_close(losses["select"], masked_bce(logits["select"], has_sentence, detected, 2.0))
    torch.testing.assert_close(losses["abnormal"], masked_bce(logits["abnormal"], is_abnormal, detected, 6.0))
    torch.testing.assert_close(total_loss(losses), 5 * losses["select"] + 5 * losses["abnormal"])
    assert LOSS_WEIGHTS == {"select": 5.0, "abnormal": 5.0}
    assert set(make_selector(abnormal=False)(feats, has_sentence, is_abnormal, detected)) == {"select"}


def test_select_rule_threshold_and_detected():
    model = make_selector(threshold=0.25)
    feats = torch.randn(2, R, 16)
    detected = torch.rand(2, R) > 0.5
    logits, selected = model.select(feats, detected)
    torch.testing.assert_close(logits, model.logits(feats)["select"])
    assert torch.equal(selected, (logits > 0.25) & detected)
    assert torch.equal(model.select(feats)[1], logits > 0.25)


def test_selector_folder_roundtrip(tmp_path):
    model = make_selector()
    model.save_pretrained(tmp_path / "sel", extra={"best_epoch": 3})
    config = json.loads((tmp_path / "sel" / "config.json").read_text())
    assert config["kind"] == "rrg_region_selector" and config["best_epoch"] == 3
    loaded = RegionSelector.from_pretrained(tmp_path / "sel")
    feats = torch.randn(1, R, 16)
    torch.testing.assert_close(loaded.project(feats), model.project(feats))
    assert not loaded.training
    with pytest.raises(ValueError, match="kind"):
        (tmp_path / "sel" / "config.json").write_text(json.dumps({**config, "kind": "other"}))
        RegionSelector.from_pretrained(tmp_path / "sel")


def test_region_feature_files_roundtrip(tmp_path):
    n, c = 3, 5
    tensors = {"features": torch.randn(n, R, c).half(), "boxes": torch.rand(n, R, 4) * 64,
               "detected": (torch.rand(n, R) > 0.5).to(torch.uint8), "scores": torch.rand(n, R)}
    save_region_features(tmp_path / "f.safetensors", tmp_path / "f.parquet", tensors, ["a", "b", "c"], [7, 3, 9])
    loaded, frame = load_region_features(tmp_path / "f.safetensors")
    assert loaded["features"].dtype == torch.float16 and loaded["detected"].dtype == torch.bool
    torch.testing.assert_close(loaded["boxes"], tensors["boxes"])
    assert frame["dicom_id"].tolist() == ["a", "b", "c"] and frame["cache_row"].tolist() == [7, 3, 9]
    assert frame["row"].tolist() == [0, 1, 2]
    pd.DataFrame({"dicom_id": ["a"], "row": [0]}).to_parquet(tmp_path / "f.parquet")
    with pytest.raises(ValueError, match="do not index"):
        load_region_features(tmp_path / "f.safetensors")


def synthetic_selector_data(n, seed):
    """Region features whose first channel says whether the region has a sentence."""
    g = torch.Generator().manual_seed(seed)
    has_sentence = torch.rand(n, R, generator=g) > 0.7
    feats = torch.randn(n, R, 16, generator=g) * 0.5
    feats[..., 0] += has_sentence.float() * 3
    detected = torch.rand(n, R, generator=g) > 0.1
    return SelectorData([f"i{k}" for k in range(n)], feats.half(), detected, has_sentence,
                        torch.zeros(n, R, dtype=torch.bool))


def test_selector_learns_a_separable_rule(tmp_path):
    train, valid = synthetic_selector_data(64, 0), synthetic_selector_data(32, 1)
    model = make_selector(threshold=0.0)
    trainer = SelectorTrainer(model, train, valid, Schedule(epochs=6, batch_size=16, lr=3e-3),
                              device=torch.device("cpu"), seed=0, progress=False)
    before = trainer.validate()
    history = trainer.fit(tmp_path / "ckpt", tmp_path / "metrics.tsv")
    assert history.best_val < before
    metrics = selection_metrics(model, valid, "cpu")
    assert metrics["precision"] > 0.85 and metrics["recall"] > 0.85
    # undetected regions are never selected, whatever their logit
    _, selected = model.select(valid.features, valid.detected)
    assert not selected[~valid.detected].any()


def test_detector_features_selector_chain(tmp_path):
    """train_detector -> extract -> train_selector on a tiny synthetic cache, as the rules run them."""
    import dataclasses

    from test_detector import detector_io, make_synthetic_cache, tiny_settings
    from test_settings import default_settings

    from crrg_clip.data.region_dataset import Normalize, load_detector_data
    from crrg_clip.models.detector import RegionDetector
    from crrg_clip.region_features import extract_region_features
    from crrg_clip.train.detector import train_detector
    from crrg_clip.train.selector import train_selector

    root = make_synthetic_cache(tmp_path / "cache")
    paths = dict(images_path=root / "images.npy", index_path=root / "index.parquet",
                 regions_path=root / "regions.parquet", split_path=root / "split.parquet")
    cpu = torch.device("cpu")
    train_detector(tiny_settings(epochs=1, detection_min_score=0.0), *detector_io(root, tmp_path / "det"),
                   device=cpu, seed=0, checkpoint_dir=tmp_path / "ck_det", progress=False)
    detector = RegionDetector.from_pretrained(tmp_path / "det")
    for split in ("train", "valid"):
        data = load_detector_data(**paths, split=split, normalize=Normalize())
        tensors = extract_region_features(detector, data, batch_size=3, device=cpu, progress=False)
        assert tensors["features"].shape == (len(data), R, 512)
        save_region_features(tmp_path / f"{split}.safetensors", tmp_path / f"{split}.parquet", tensors,
                             data.dicom_ids, data.rows)
    settings = dataclasses.replace(default_settings("selector"), region_feature_dim=8, selection_pos_weight=2.0,
                                   abnormal_pos_weight=6.0, selection_threshold=-1.0,
                                   schedule=Schedule(epochs=2, batch_size=4, lr=1e-3))
    inputs = {"train": tmp_path / "train.safetensors", "valid": tmp_path / "valid.safetensors",
              "regions": root / "regions.parquet", "detector": tmp_path / "det" / "config.json"}
    summary = train_selector(settings, inputs, {"config": tmp_path / "sel" / "config.json"}, device=cpu, seed=0,
                             checkpoint_dir=tmp_path / "ck_sel", progress=False)
    for name in ("config.json", "model.safetensors", "metrics.tsv", "loss_curve.png", "run.json"):
        assert (tmp_path / "sel" / name).exists(), name
    assert {"precision", "recall"} <= set(summary["valid_selection"])
    # issue 14 item 23: what the labels lack is counted, with ids, in run.json
    recorded = json.loads((tmp_path / "sel" / "run.json").read_text())["summary"]["left_out"]
    assert set(recorded) == {"train", "valid"}
    assert set(recorded["train"]) == {"images_without_region_rows", "images_without_sentences",
                                      "blank_phrases_flagged_has_sentence"}
    selector = RegionSelector.from_pretrained(tmp_path / "sel")
    feats, _ = load_region_features(tmp_path / "valid.safetensors")
    assert selector.project(feats["features"]).shape == (2, R, 8)


def test_threshold_with_best_validation_f1_by_hand():
    from crrg_clip.train.selector import f1_best_threshold

    logits = torch.tensor([-2.0, -0.5, 0.3, 1.0, 2.0])
    targets = torch.tensor([False, False, True, False, True])
    # thresholds between scores: > 0.65 keeps {1.0, 2.0}: F1 2*1/(2+2) = 0.5;
    # > -0.1 keeps {0.3, 1.0, 2.0}: F1 2*2/(3+2) = 0.8 (best); > -1.25: 2*2/(4+2) = 0.667
    assert f1_best_threshold(logits, targets) == pytest.approx(-0.1)
    with pytest.raises(ValueError, match="no validation region"):
        f1_best_threshold(logits, torch.zeros(5, dtype=torch.bool))


def test_sentence_label_notes_count_images_without_sentences_and_blank_phrases(tmp_path):
    """Issue 14 item 23, by hand on a synthetic regions table."""
    from test_detector import make_synthetic_cache

    from crrg_clip.data.region_dataset import sentence_label_notes

    root = make_synthetic_cache(tmp_path / "cache", n_images=5, empty_ids=("d001",))
    regions = pd.read_parquet(root / "regions.parquet")
    blank = (regions["dicom_id"] == "d002") & (regions["region_index"] == 0)
    regions.loc[blank, "phrase"] = "  "  # flagged has_sentence, nothing to say
    regions = regions[regions["dicom_id"] != "d004"]
    regions.to_parquet(root / "regions.parquet")
    notes = sentence_label_notes(root / "regions.parquet", ["d000", "d001", "d002", "d003", "d004"])
    assert notes["images_without_region_rows"] == {"count": 1, "ids": ["d004"]}
    assert notes["images_without_sentences"] == {"count": 1, "ids": ["d001"]}  # d002 still has region 2
    assert notes["blank_phrases_flagged_has_sentence"] == {"count": 1, "ids": ["d002/0"]}


def test_selector_from_pretrained_attaches_the_folder_config(tmp_path):
    make_selector().save_pretrained(tmp_path / "sel", extra={"best_epoch": 3})
    loaded = RegionSelector.from_pretrained(tmp_path / "sel")
    assert not loaded.training and loaded.folder_config["best_epoch"] == 3
    assert loaded.folder_config["kind"] == "rrg_region_selector"


def test_standardization_uses_detected_training_regions_and_survives_the_folder(tmp_path):
    model = make_selector(in_channels=3)
    g = torch.Generator().manual_seed(1)
    feats = 5.0 + 0.1 * torch.randn(4, R, 3, generator=g)  # a large shared offset, small variation
    detected = torch.rand(4, R, generator=g) > 0.3
    feats[~detected] = 0.0  # an undetected region's zero feature must not pull the statistics
    model.fit_standardization(feats, detected)
    found = feats[detected]
    torch.testing.assert_close(model.feature_mean, found.mean(0))
    torch.testing.assert_close(model.feature_std, found.std(0))
    standardized = model.standardize(feats)[detected]
    torch.testing.assert_close(standardized.mean(0), torch.zeros(3), atol=1e-5, rtol=0)
    torch.testing.assert_close(standardized.std(0), torch.ones(3), atol=1e-5, rtol=0)
    # the projection sees the standardised features, and a reloaded folder applies the same statistics
    torch.testing.assert_close(model.project(feats), model.projection(model.standardize(feats)))
    model.save_pretrained(tmp_path / "sel")
    loaded = RegionSelector.from_pretrained(tmp_path / "sel")
    torch.testing.assert_close(loaded.standardize(feats), model.standardize(feats))
    with pytest.raises(ValueError, match="fewer than two detected"):
        model.fit_standardization(feats, torch.zeros_like(detected))
