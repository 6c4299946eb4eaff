"""The paper-size detector (ResNet-50 C5, 512 px, 10 anchor sizes x 16 ratios, RoIAlign 8x8) builds,
trains one step, predicts, and survives a save / load as a model folder (CPU, random weights)."""

import pytest
import torch

from crrg_clip.models.detector import DetectorConfig, RegionDetector
from crrg_clip.regions import NUM_REGIONS

pytestmark = pytest.mark.slow


def test_realsize_detector_step_predict_and_reload(tmp_path):
    torch.manual_seed(0)
    config = DetectorConfig()  # the schema defaults are the paper's values
    assert config.backbone == "resnet50" and config.image_size == 512 and config.roi_output_size == 8
    assert (len(config.anchor_sizes), len(config.anchor_ratios)) == (10, 16)
    model = RegionDetector(config)
    assert model.frcnn.rpn.anchor_generator.num_anchors_per_location() == [160]
    images = torch.randn(1, 1, 512, 512)
    targets = [{"boxes": torch.tensor([[40.0, 60.0, 250.0, 420.0], [260.0, 60.0, 470.0, 430.0],
                                       [200.0, 150.0, 330.0, 400.0]]),
                "labels": torch.tensor([1, 9, 25])}]
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    model.train()
    losses = model(images, targets)
    loss = sum(losses.values())
    assert torch.isfinite(loss)
    loss.backward()
    optimizer.step()

    out = model.predict(images)
    assert out["features"].shape == (1, NUM_REGIONS, 2048)
    assert out["boxes"].shape == (1, NUM_REGIONS, 4)
    assert ((out["boxes"] >= 0) & (out["boxes"] <= 512)).all()

    model.save_pretrained(tmp_path / "detector")
    reloaded = RegionDetector.from_pretrained(tmp_path / "detector")
    again = reloaded.predict(images)
    for key in out:
        torch.testing.assert_close(again[key], out[key])
