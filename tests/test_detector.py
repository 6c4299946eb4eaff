"""RRG stage 1: detector structure, predict contract, augmentation geometry, cache datasets."""

import logging
import math

import numpy as np
import pandas as pd
import pytest
import torch
import torchvision
from torchvision.ops.misc import FrozenBatchNorm2d

from crrg_clip.data.region_dataset import (
    AugmentConfig, DetectorData, Normalize, affine_boxes, affine_image, augment, item_generator,
    load_detector_data, read_region_targets,
)
from crrg_clip.models.detector import DetectorConfig, RegionDetector, build_backbone
from crrg_clip.regions import NUM_REGIONS, REGIONS

SIZE = 64


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def tiny_config(**overrides) -> DetectorConfig:
    values = dict(backbone="resnet18", image_size=SIZE, anchor_sizes=[8, 16, 32], anchor_ratios=[0.5, 1.0, 2.0],
                  roi_output_size=2)
    values.update(overrides)
    return DetectorConfig(**values)


def tiny_settings(epochs: int = 1, **overrides):
    """DetectorSettings of ``tiny_config(**overrides)``, the schema's other defaults, batches of 4."""
    import dataclasses

    from crrg_clip.settings import DETECTOR_MODEL_KEYS, Schedule
    from test_settings import default_settings

    config = tiny_config(**overrides)
    model = {k: getattr(config, k) for k in (*DETECTOR_MODEL_KEYS, "normalize_mean", "normalize_std")}
    return dataclasses.replace(default_settings("detector"), model=model,
                               schedule=Schedule(epochs=epochs, batch_size=4, lr=1e-3))


def detector_io(root, out_dir):
    """The inputs and outputs mappings of rule train_detector for a synthetic cache."""
    inputs = {"images": root / "images.npy", "index": root / "index.parquet", "regions": root / "regions.parquet",
              "split": root / "split.parquet"}
    return inputs, {"config": out_dir / "config.json"}


def make_synthetic_cache(root, n_images: int = 12, size: int = SIZE, seed: int = 0, empty_ids=()):
    """A tiny cache in the FILES.md layout: bright rectangles at the boxes of 4 regions per image."""
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    images = np.zeros((n_images, size, size), dtype=np.uint8)
    ids = [f"d{i:03d}" for i in range(n_images)]
    rows = []
    for i, dicom_id in enumerate(ids):
        for r in range(NUM_REGIONS):
            valid = r < 4 and dicom_id not in empty_ids
            if valid:
                x1, y1 = rng.integers(2, size // 2, size=2)
                w, h = rng.integers(8, size // 2 - 2, size=2)
                images[i, y1:y1 + h, x1:x1 + w] = 60 + 40 * r
                box = [float(x1), float(y1), float(x1 + w), float(y1 + h)]
            else:
                box = [np.nan] * 4
            rows.append({"dicom_id": dicom_id, "region_index": r, "region": REGIONS[r],
                         "x1": box[0], "y1": box[1], "x2": box[2], "y2": box[3], "box_valid": valid,
                         "phrase": "x" if valid and r % 2 == 0 else "", "has_sentence": valid and r % 2 == 0,
                         "is_abnormal": valid and r == 0})
    np.save(root / "images.npy", images)
    pd.DataFrame({"dicom_id": ids, "row": np.arange(n_images, dtype=np.int64), "study_id": np.arange(n_images),
                  "view_position": "PA", "scale": 1.0, "pad_x": 0.0, "pad_y": 0.0, "width": size,
                  "height": size}).to_parquet(root / "index.parquet", index=False)
    pd.DataFrame(rows).to_parquet(root / "regions.parquet", index=False)
    splits = ["train"] * (n_images - 4) + ["valid"] * 2 + ["test"] * 2
    pd.DataFrame({"dicom_id": ids, "subject_id": np.arange(n_images), "study_id": np.arange(n_images),
                  "split": splits}).to_parquet(root / "split.parquet", index=False)
    return root


def batch_for(n=2):
    torch.manual_seed(0)
    images = torch.randn(n, 1, SIZE, SIZE)
    targets = [{"boxes": torch.tensor([[4.0, 4.0, 30.0, 30.0], [10.0, 12.0, 60.0, 50.0]]),
                "labels": torch.tensor([1, 29])} for _ in range(n)]
    return images, targets


def test_forward_returns_torchvision_loss_dict_and_trains():
    torch.manual_seed(0)
    model = RegionDetector(tiny_config()).train()
    images, targets = batch_for()
    losses = model(images, targets)
    assert set(losses) == {"loss_classifier", "loss_box_reg", "loss_objectness", "loss_rpn_box_reg"}
    assert all(torch.isfinite(v) for v in losses.values())
    sum(losses.values()).backward()
    assert model.frcnn.backbone[0].weight.grad is not None
    assert model.frcnn.roi_heads.box_predictor.cls_score.out_features == NUM_REGIONS + 1
    # one feature map, one anchor tuple: sizes x ratios anchors per location
    assert model.frcnn.rpn.anchor_generator.num_anchors_per_location() == [9]
    with pytest.raises(RuntimeError, match="train mode"):
        model.eval()(images, targets)


def test_no_rescaling_by_torchvision_transform():
    model = RegionDetector(tiny_config()).eval()
    image_list, _ = model.frcnn.transform([torch.randn(1, SIZE, SIZE)])
    assert image_list.image_sizes == [(SIZE, SIZE)]


def test_predict_contract_and_undetected_fallback():
    torch.manual_seed(0)
    images, _ = batch_for(3)
    model = RegionDetector(tiny_config(detection_min_score=0.0))
    out = model.predict(images)
    assert out["boxes"].shape == (3, NUM_REGIONS, 4)
    assert out["scores"].shape == (3, NUM_REGIONS)
    assert out["detected"].dtype == torch.bool and out["detected"].shape == (3, NUM_REGIONS)
    assert out["features"].shape == (3, NUM_REGIONS, 512)
    detected = out["detected"]
    assert detected.any()
    b = out["boxes"][detected]
    assert (b >= 0).all() and (b <= SIZE).all() and (b[:, 2] > b[:, 0]).all() and (b[:, 3] > b[:, 1]).all()
    # the same detector with an unreachable score threshold: nothing detected, boxes/features zero
    model.config.detection_min_score = 1.01
    none = model.predict(images)
    assert not none["detected"].any()
    assert (none["boxes"] == 0).all() and (none["features"] == 0).all()
    torch.testing.assert_close(none["scores"], out["scores"])


def test_region_features_are_roialign_average_of_c5_at_the_box():
    torch.manual_seed(0)
    model = RegionDetector(tiny_config(detection_min_score=0.0)).eval()
    images, _ = batch_for(1)
    out = model.predict(images)
    c5 = model.frcnn.backbone(images)  # (1, C, 2, 2)
    r = int(torch.nonzero(out["detected"][0])[0])
    box = out["boxes"][0, r]
    expected = torchvision.ops.roi_align(c5, [box[None]], output_size=2, spatial_scale=c5.shape[-1] / SIZE,
                                         sampling_ratio=2).mean(dim=(2, 3))[0]
    torch.testing.assert_close(out["features"][0, r], expected, rtol=1e-4, atol=1e-5)


def test_conv1_from_rgb_sum_and_frozen_bn_with_weights(tmp_path):
    torch.manual_seed(0)
    reference = torchvision.models.resnet18(weights=None)
    path = tmp_path / "resnet18.pt"
    torch.save(reference.state_dict(), path)
    body = build_backbone("resnet18", path, frozen_batchnorm=True)
    assert body[0].in_channels == 1
    torch.testing.assert_close(body[0].weight, reference.conv1.weight.sum(dim=1, keepdim=True))
    torch.testing.assert_close(body[4][0].conv1.weight, reference.layer1[0].conv1.weight)
    assert isinstance(body[1], FrozenBatchNorm2d)
    assert body.out_channels == 512
    with pytest.raises(FileNotFoundError, match="backbone_weights"):
        build_backbone("resnet18", tmp_path / "missing.pt", frozen_batchnorm=True)


def test_loss_mode_keeps_batchnorm_statistics():
    torch.manual_seed(0)
    model = RegionDetector(tiny_config()).eval()
    before = model.frcnn.backbone[1].running_mean.clone()
    images, targets = batch_for()
    with torch.no_grad(), model.loss_mode():
        losses = model(images, targets)
    assert set(losses) >= {"loss_classifier"}
    torch.testing.assert_close(model.frcnn.backbone[1].running_mean, before)
    assert not model.training


def test_save_and_load_model_folder(tmp_path):
    torch.manual_seed(0)
    model = RegionDetector(tiny_config(detection_min_score=0.0))
    images, targets = batch_for()
    model.train()(images, targets)  # updates batch-norm statistics
    model.save_pretrained(tmp_path / "det")
    loaded = RegionDetector.from_pretrained(tmp_path / "det")
    assert loaded.config == model.config
    a, b = model.predict(images), loaded.predict(images)
    for key in a:
        torch.testing.assert_close(a[key], b[key])


def test_affine_moves_boxes_with_the_content():
    image = torch.zeros(1, SIZE, SIZE)
    image[0, 20:40, 10:30] = 1.0  # box x 10..30, y 20..40
    box = torch.tensor([[10.0, 20.0, 30.0, 40.0]])
    for angle, shift in [(0.0, (5.0, -3.0)), (10.0, (0.0, 0.0)), (-7.0, (2.5, 4.0))]:
        moved = affine_image(image, angle, shift)[0]
        ys, xs = torch.nonzero(moved > 0.5, as_tuple=True)
        content = torch.tensor([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1], dtype=torch.float32)
        torch.testing.assert_close(affine_boxes(box, angle, shift, SIZE)[0], content, atol=1.6, rtol=0)


def test_affine_box_leaving_the_image_is_not_a_target():
    box = torch.tensor([[60.0, 10.0, 63.5, 20.0]])
    assert torch.isnan(affine_boxes(box, 0.0, (10.0, 0.0), SIZE)).all()


def test_augment_is_seeded_and_bounded():
    image = torch.rand(1, SIZE, SIZE)
    boxes = torch.tensor([[10.0, 20.0, 30.0, 40.0]])
    cfg = AugmentConfig(brightness=0.1, contrast=0.1, noise_std=0.02, translate_fraction=0.05, rotate_degrees=3)
    a = augment(image, boxes, cfg, item_generator(0, 1, 5))
    b = augment(image, boxes, cfg, item_generator(0, 1, 5))
    c = augment(image, boxes, cfg, item_generator(0, 2, 5))
    torch.testing.assert_close(a[0], b[0])
    torch.testing.assert_close(a[1], b[1])
    assert not torch.equal(a[0], c[0])
    assert a[0].min() >= 0 and a[0].max() <= 1
    # translate <= 5% of 64 px, rotation 3 deg about the centre: corners move a few pixels at most
    assert (a[1] - boxes).abs().max() < 0.05 * SIZE + SIZE * math.sin(math.radians(3)) + 1


def test_region_targets_pivot(tmp_path):
    frame = pd.DataFrame([
        {"dicom_id": "a", "region_index": 0, "x1": 1.0, "y1": 2.0, "x2": 5.0, "y2": 9.0, "box_valid": True,
         "has_sentence": True, "is_abnormal": False},
        {"dicom_id": "a", "region_index": 3, "x1": 1.0, "y1": 2.0, "x2": 5.0, "y2": 9.0, "box_valid": False,
         "has_sentence": False, "is_abnormal": True},
        {"dicom_id": "b", "region_index": 28, "x1": np.nan, "y1": np.nan, "x2": np.nan, "y2": np.nan,
         "box_valid": False, "has_sentence": True, "is_abnormal": False},
    ])
    frame.to_parquet(tmp_path / "regions.parquet")
    t = read_region_targets(tmp_path / "regions.parquet", ["b", "a", "c"])
    assert t.boxes.shape == (3, NUM_REGIONS, 4)
    np.testing.assert_array_equal(t.boxes[1, 0], [1, 2, 5, 9])
    assert np.isnan(t.boxes[1, 3]).all()  # box_valid False -> not a target even with coordinates
    assert np.isnan(t.boxes[2]).all()  # image without any row
    assert t.valid_box().sum() == 1
    assert t.has_sentence[0, 28] and t.has_sentence[1, 0] and t.has_sentence.sum() == 2
    assert t.is_abnormal[1, 3]


def test_detector_data_skips_images_without_boxes_loudly(tmp_path, caplog):
    root = make_synthetic_cache(tmp_path / "cache", empty_ids=("d001",))
    with caplog.at_level(logging.WARNING):
        data = load_detector_data(images_path=root / "images.npy", index_path=root / "index.parquet",
                                  regions_path=root / "regions.parquet", split_path=root / "split.parquet",
                                  split="train", normalize=Normalize(0.5, 0.25), require_boxes=True)
    assert data.skipped_no_boxes == ["d001"]
    assert "skipped 1 image(s) with no valid region box" in caplog.text
    assert len(data) == 7 and "d001" not in data.dicom_ids
    images, targets = data.batch([0, 1])
    assert images.shape == (2, 1, SIZE, SIZE)
    raw = np.load(root / "images.npy")[data.rows[0]].astype(np.float32) / 255
    torch.testing.assert_close(images[0, 0], (torch.from_numpy(raw) - 0.5) / 0.25)
    assert targets[0]["labels"].tolist() == [1, 2, 3, 4]  # label = region_index + 1
    assert targets[0]["boxes"].shape == (4, 4)


def test_detector_data_missing_from_cache_is_logged(tmp_path, caplog):
    root = make_synthetic_cache(tmp_path / "cache")
    index = pd.read_parquet(root / "index.parquet")
    index[index["dicom_id"] != "d000"].to_parquet(root / "index.parquet")
    with caplog.at_level(logging.WARNING):
        data = load_detector_data(images_path=root / "images.npy", index_path=root / "index.parquet",
                                  regions_path=root / "regions.parquet", split_path=root / "split.parquet",
                                  split="train", normalize=Normalize())
    assert "1 of 8 images are not in the cache" in caplog.text and len(data) == 7
    assert data.left_out()["missing_from_cache"] == {"count": 1, "ids": ["d000"]}  # issue 14 item 23


def test_train_detector_counts_left_out_images_with_ids_in_run_json(tmp_path):
    """Issue 14 item 23: images missing from the cache and images without a valid box, per split."""
    import json

    from crrg_clip.train.detector import train_detector

    root = make_synthetic_cache(tmp_path / "cache", empty_ids=("d001",))
    index = pd.read_parquet(root / "index.parquet")
    index[index["dicom_id"] != "d002"].to_parquet(root / "index.parquet")
    train_detector(tiny_settings(epochs=1), *detector_io(root, tmp_path / "det"), device=torch.device("cpu"), seed=0,
                   checkpoint_dir=tmp_path / "ckpt", progress=False)
    left_out = json.loads((tmp_path / "det" / "run.json").read_text())["summary"]["left_out"]
    assert left_out["train"] == {"missing_from_cache": {"count": 1, "ids": ["d002"]},
                                 "no_valid_box": {"count": 1, "ids": ["d001"]}}
    assert left_out["valid"]["missing_from_cache"]["count"] == 0


def test_train_detector_writes_model_folder(tmp_path):
    from crrg_clip.train.detector import train_detector

    root = make_synthetic_cache(tmp_path / "cache")
    out = tmp_path / "rrg" / "detector"
    summary = train_detector(tiny_settings(epochs=2), *detector_io(root, out), device=torch.device("cpu"), seed=0,
                             checkpoint_dir=tmp_path / "ckpt", progress=False)
    for name in ("config.json", "model.safetensors", "metrics.tsv", "loss_curve.png", "run.json"):
        assert (out / name).exists(), name
    metrics = pd.read_csv(out / "metrics.tsv", sep="\t")
    assert list(metrics["epoch"]) == [0, 1]
    assert {"train_loss", "train_loss_classifier", "val_loss", "lr"} <= set(metrics.columns)
    assert summary["best_val_loss"] == metrics["val_loss"].min()
    assert not (tmp_path / "ckpt" / "last.pt").exists()  # a finished training keeps no resume point
    RegionDetector.from_pretrained(out)


# --- the top-1-per-region rule (issue 14 items 21 and 24), on hand-built detector outputs ---

def _hand_built(num_regions=3):
    """3 proposals over 3 regions (+ background at column 0); proposal p's box for region r = p*10 + r."""
    probs = torch.tensor([[0.10, 0.50, 0.30, 0.10],   # p0: argmax region 0
                          [0.05, 0.40, 0.45, 0.10],   # p1: argmax region 1, but region 0's prob 0.40
                          [0.70, 0.02, 0.08, 0.20]])  # p2: argmax background; best for region 2
    boxes = torch.stack([torch.stack([torch.tensor([p * 10.0 + r, 0.0, p * 10.0 + r + 5, 5.0])
                                      for r in range(num_regions)]) for p in range(3)])  # (P, R, 4)
    proposals = torch.tensor([[0.0, 0.0, 9.0, 9.0], [1.0, 1.0, 8.0, 8.0], [2.0, 2.0, 7.0, 7.0]])
    return probs, boxes, proposals


def test_best_score_rule_picks_each_regions_highest_probability_proposal():
    from crrg_clip.models.detector import top1_per_region
    probs, boxes, proposals = _hand_built()
    chosen, scores, detected, feature_boxes = top1_per_region(probs, boxes, proposals, "best_score", 0.15)
    best = [0, 1, 2]  # region 0: p0 (0.50 > 0.40); region 1: p1 (0.45); region 2: p2 (0.20 > 0.10)
    for r, p in enumerate(best):
        assert torch.equal(chosen[r], boxes[p, r])
        assert scores[r] == probs[p, r + 1]
    assert detected.tolist() == [True, True, True]  # all >= 0.15
    assert torch.equal(feature_boxes, chosen)  # features re-pooled at the regressed box
    _, _, detected, _ = top1_per_region(probs, boxes, proposals, "best_score", 0.3)
    assert detected.tolist() == [True, True, False]


def test_argmax_class_rule_assigns_proposals_to_their_argmax_class():
    from crrg_clip.models.detector import top1_per_region
    probs, boxes, proposals = _hand_built()
    probs = probs.clone()
    probs[1] = torch.tensor([0.05, 0.48, 0.47, 0.0])  # p1 now argmax region 0 too, lower than p0
    chosen, scores, detected, feature_boxes = top1_per_region(probs, boxes, proposals, "argmax_class", 0.99)
    # region 0: p0 and p1 assigned, p0 scores higher; region 1: nothing assigned (p1's 0.47 is not
    # its argmax); region 2: p2's argmax is background, so not detected although no threshold applies
    assert detected.tolist() == [True, False, False]
    assert torch.equal(chosen[0], boxes[0, 0]) and scores[0] == probs[0, 1]
    assert torch.equal(feature_boxes[0], proposals[0])  # the RoI, not the regressed box
    assert torch.equal(chosen[1:], torch.zeros(2, 4)) and torch.equal(feature_boxes[1:], torch.zeros(2, 4))
    # no score threshold: a region whose assigned proposal scores 0.3 is detected
    low = torch.tensor([[0.29, 0.01, 0.30, 0.40]])
    _, _, detected, _ = top1_per_region(low, boxes[:1], proposals[:1], "argmax_class", 0.99)
    assert detected.tolist() == [False, False, True]


def test_detection_rule_reaches_predict_and_config_json(tmp_path):
    torch.manual_seed(0)
    model = RegionDetector(tiny_config(detection_rule="argmax_class")).eval()
    out = model.predict(torch.randn(2, 1, SIZE, SIZE))
    assert out["boxes"].shape == (2, NUM_REGIONS, 4) and out["detected"].dtype == torch.bool
    assert torch.all(out["features"][~out["detected"]] == 0)
    model.save_pretrained(tmp_path / "m")
    assert RegionDetector.from_pretrained(tmp_path / "m").config.detection_rule == "argmax_class"
    with pytest.raises(ValueError, match="detection_rule"):
        tiny_config(detection_rule="nope")


# --- augmentation probability and sharpen (issue 14 item 22(d)) ---

def _old_augment(image, boxes, cfg, generator):
    """The augmentation before the p / sharpen keys, written out: the demo's bytes must not move."""
    def uniform(half_width):
        return float((torch.rand((), generator=generator) * 2 - 1) * half_width)

    size = image.shape[-1]
    image = image * (1.0 + uniform(cfg.brightness))
    mean = image.mean()
    image = ((image - mean) * (1.0 + uniform(cfg.contrast)) + mean).clamp(0, 1)
    image = (image + torch.randn(image.shape, generator=generator) * cfg.noise_std).clamp(0, 1)
    angle = uniform(cfg.rotate_degrees)
    shift = (uniform(cfg.translate_fraction) * size, uniform(cfg.translate_fraction) * size)
    return affine_image(image, angle, shift), affine_boxes(boxes, angle, shift, size)


def test_augment_with_p_1_and_no_sharpen_is_byte_identical_to_before():
    image = torch.rand(1, SIZE, SIZE, generator=torch.Generator().manual_seed(3))
    boxes = torch.tensor([[4.0, 4.0, 30.0, 30.0], [np.nan] * 4])
    cfg = AugmentConfig(p=1.0, sharpen=0.0)
    new = augment(image, boxes, cfg, item_generator(0, 1, 5))
    old = _old_augment(image, boxes, cfg, item_generator(0, 1, 5))
    assert torch.equal(new[0], old[0])
    assert torch.equal(torch.nan_to_num(new[1], nan=-1.0), torch.nan_to_num(old[1], nan=-1.0))


def test_augment_p_0_is_identity_and_p_half_applies_some():
    image = torch.rand(1, SIZE, SIZE, generator=torch.Generator().manual_seed(3))
    boxes = torch.tensor([[4.0, 4.0, 30.0, 30.0]])
    out, out_boxes = augment(image, boxes, AugmentConfig(p=0.0, sharpen=0.5), item_generator(0, 0, 0))
    assert torch.equal(out, image) and torch.equal(out_boxes, boxes)
    moved = [not torch.equal(augment(image, boxes, AugmentConfig(p=0.5), item_generator(0, 0, i))[1], boxes)
             for i in range(200)]
    assert 0.35 < np.mean(moved) < 0.65  # the affine step, applied about half the time


def test_sharpen_keeps_flat_areas_and_steepens_edges():
    from crrg_clip.data.region_dataset import sharpen_image

    image = torch.full((1, 8, 8), 0.5)
    image[:, :, 4:] = 0.7
    out = sharpen_image(image, 0.5)
    torch.testing.assert_close(out[:, :, :2], image[:, :, :2])
    torch.testing.assert_close(out[:, :, 6:], image[:, :, 6:])
    assert out[0, 3, 3] < 0.5 and out[0, 3, 4] > 0.7  # the step overshoots on both sides
    assert torch.equal(sharpen_image(image, 0.0), image)


def test_detector_from_pretrained_is_eval_mode_with_its_folder_config(tmp_path):
    from crrg_clip.modelio import KindError
    from crrg_clip.models.selector import RegionSelector, SelectorConfig

    torch.manual_seed(0)
    RegionDetector(tiny_config()).save_pretrained(tmp_path / "det", extra={"image_cache": {"size": 64}})
    loaded = RegionDetector.from_pretrained(tmp_path / "det")
    assert not loaded.training and loaded.folder_config["image_cache"] == {"size": 64}
    assert loaded.config == tiny_config()
    RegionSelector(SelectorConfig(in_channels=4)).save_pretrained(tmp_path / "sel")
    with pytest.raises(KindError, match="expected 'rrg_region_detector'"):
        RegionDetector.from_pretrained(tmp_path / "sel")
