"""Stage 1 of RRG: a Faster R-CNN region detector on torchvision's public parts.

ResNet (18/34/50) up to C5, no FPN, a 1-channel ``conv1``; one feature map, so the anchor
generator has one size tuple and one ratio tuple; RoIAlign through ``MultiScaleRoIAlign(["0"])``;
30 classes (29 regions + background, label = region_index + 1).

Normalisation: the data pipeline normalises with ``rrg.normalize`` itself, so torchvision's
``GeneralizedRCNNTransform`` is given ``image_mean=[0]``, ``image_std=[1]`` (identity) and
``min_size = max_size = image_size`` (square cache images are never rescaled).

Batch norm: with ImageNet weights the backbone uses ``FrozenBatchNorm2d`` (the ImageNet
statistics are kept, as in torchvision's detection models); with random weights there are no
statistics worth keeping, so ordinary ``BatchNorm2d`` trains. Either way the validation loss is
computed with batch norm in eval mode (``loss_mode``).

Letters: B batch, R regions (29), P proposals, C backbone channels.
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
import torchvision
from torch import nn
from torchvision.models.detection import FasterRCNN
from torchvision.models.detection.anchor_utils import AnchorGenerator
from torchvision.ops import MultiScaleRoIAlign, boxes as box_ops
from torchvision.ops.misc import FrozenBatchNorm2d

from crrg_clip.modelio import load_config_model, save_model_folder
from crrg_clip.regions import NUM_REGIONS, REGIONS

log = logging.getLogger(__name__)

KIND = "rrg_region_detector"
BACKBONE_CHANNELS = {"resnet18": 512, "resnet34": 512, "resnet50": 2048}


@dataclass
class DetectorConfig:
    """Everything needed to rebuild the detector's structure (stored as config.json)."""

    backbone: str = "resnet50"
    image_size: int = 512
    anchor_sizes: list[int] = field(default_factory=lambda: [20, 40, 60, 80, 100, 120, 140, 160, 180, 300])
    anchor_ratios: list[float] = field(default_factory=lambda: [
        0.2, 0.25, 0.33, 0.5, 0.75, 1.0, 1.33, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0, 4.5, 5.0, 8.0])
    roi_output_size: int = 8
    frozen_batchnorm: bool = False
    detection_min_score: float = 0.05
    # proposal and RoI sampling sizes (torchvision's defaults; the demo uses fewer on CPU)
    rpn_pre_nms_top_n: int = 2000
    rpn_post_nms_top_n: int = 2000
    box_batch_size_per_image: int = 512
    normalize_mean: float = 0.471
    normalize_std: float = 0.302
    num_classes: int = NUM_REGIONS + 1

    def __post_init__(self):
        if self.backbone not in BACKBONE_CHANNELS:
            raise ValueError(f"detector backbone {self.backbone!r}: expected one of {sorted(BACKBONE_CHANNELS)}")
        self.anchor_sizes = [int(s) for s in self.anchor_sizes]
        self.anchor_ratios = [float(r) for r in self.anchor_ratios]

    @property
    def out_channels(self) -> int:
        return BACKBONE_CHANNELS[self.backbone]


def build_backbone(name: str, weights_path: str | Path | None, frozen_batchnorm: bool) -> nn.Sequential:
    """ResNet up to C5 (stride 32) with a 1-channel conv1; ``out_channels`` set for Faster R-CNN."""
    norm_layer = FrozenBatchNorm2d if frozen_batchnorm else nn.BatchNorm2d
    resnet = getattr(torchvision.models, name)(weights=None, norm_layer=norm_layer)
    if weights_path is not None:
        path = Path(weights_path)
        if not path.exists():
            raise FileNotFoundError(f"rrg.backbone_weights = {path}: file not found")
        state = torch.load(path, map_location="cpu", weights_only=True)
        if not isinstance(state, dict):
            raise ValueError(f"{path}: expected a torchvision {name} state dict")
        state = {k: v for k, v in state.items() if not k.startswith("fc.")}
        missing, unexpected = resnet.load_state_dict(state, strict=False)
        missing = [k for k in missing if not k.startswith("fc.") and not k.endswith("num_batches_tracked")]
        if missing or unexpected:
            raise ValueError(f"{path}: not a {name} state dict (missing {missing[:5]}, unexpected {unexpected[:5]})")
    old = resnet.conv1
    conv1 = nn.Conv2d(1, old.out_channels, kernel_size=old.kernel_size, stride=old.stride,
                      padding=old.padding, bias=False)
    if weights_path is not None:
        with torch.no_grad():
            conv1.weight.copy_(old.weight.sum(dim=1, keepdim=True))  # grey = R + G + B response
    body = nn.Sequential(conv1, resnet.bn1, resnet.relu, resnet.maxpool,
                         resnet.layer1, resnet.layer2, resnet.layer3, resnet.layer4)
    body.out_channels = BACKBONE_CHANNELS[name]
    return body


class RegionDetector(nn.Module):
    """Faster R-CNN over the 29 regions; ``forward`` = loss dict, ``predict`` = top-1 box per region."""

    def __init__(self, config: DetectorConfig, backbone_weights: str | Path | None = None):
        super().__init__()
        self.config = config
        backbone = build_backbone(config.backbone, backbone_weights, config.frozen_batchnorm)
        anchors = AnchorGenerator(sizes=(tuple(config.anchor_sizes),),
                                  aspect_ratios=(tuple(config.anchor_ratios),))
        roi_pool = MultiScaleRoIAlign(featmap_names=["0"], output_size=config.roi_output_size, sampling_ratio=2)
        self.frcnn = FasterRCNN(
            backbone, num_classes=config.num_classes,
            min_size=config.image_size, max_size=config.image_size,
            image_mean=[0.0], image_std=[1.0],  # inputs arrive normalised (rrg.normalize)
            rpn_anchor_generator=anchors, box_roi_pool=roi_pool,
            rpn_pre_nms_top_n_train=config.rpn_pre_nms_top_n,
            rpn_pre_nms_top_n_test=config.rpn_pre_nms_top_n,
            rpn_post_nms_top_n_train=config.rpn_post_nms_top_n,
            rpn_post_nms_top_n_test=config.rpn_post_nms_top_n,
            box_batch_size_per_image=config.box_batch_size_per_image,
        )

    @staticmethod
    def _as_list(images: torch.Tensor | list[torch.Tensor]) -> list[torch.Tensor]:
        return list(images.unbind(0)) if isinstance(images, torch.Tensor) else list(images)

    def forward(self, images: torch.Tensor, targets: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
        """images (B, 1, S, S) normalised; targets: per image ``boxes (n, 4)`` xyxy, ``labels (n,)``.

        Returns torchvision's losses (classifier, box_reg, objectness, rpn_box_reg). Needs
        ``self.training`` (use ``loss_mode`` for a validation loss)."""
        if not self.training:
            raise RuntimeError("RegionDetector.forward returns losses and needs train mode; use predict()")
        return self.frcnn(self._as_list(images), targets)

    @contextlib.contextmanager
    def loss_mode(self):
        """Train mode (torchvision returns losses only then) with batch norm kept in eval mode."""
        was_training = self.training
        self.train()
        for module in self.modules():
            if isinstance(module, nn.modules.batchnorm._BatchNorm):
                module.eval()
        try:
            yield self
        finally:
            self.train(was_training)

    @torch.no_grad()
    def predict(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        """Top-1 box per region from the class-specific boxes over the RPN proposals.

        Returns ``boxes (B, R, 4)`` xyxy in input pixels, ``scores (B, R)`` (best softmax score),
        ``detected (B, R)`` bool (best score >= detection_min_score), ``features (B, R, C)``
        (RoIAlign of C5 at the box, average pooled). A region that is not detected has
        box = 0 and features = 0: the flag, never the box, says whether it is usable.
        """
        was_training = self.training
        self.eval()
        try:
            frcnn = self.frcnn
            image_list, _ = frcnn.transform(self._as_list(images))
            feats = frcnn.backbone(image_list.tensors)  # (B, C, S/32, S/32)
            feature_maps = {"0": feats}
            proposals, _ = frcnn.rpn(image_list, feature_maps)
            heads = frcnn.roi_heads
            pooled = heads.box_roi_pool(feature_maps, proposals, image_list.image_sizes)
            class_logits, box_regression = heads.box_predictor(heads.box_head(pooled))
            decoded = heads.box_coder.decode(box_regression, proposals)  # (sum P, K, 4)
            probs = torch.softmax(class_logits.float(), dim=-1)  # (sum P, K)
            counts = [len(p) for p in proposals]
            out_boxes, out_scores = [], []
            for boxes_i, probs_i, size in zip(decoded.split(counts), probs.split(counts), image_list.image_sizes):
                boxes_i = box_ops.clip_boxes_to_image(boxes_i[:, 1:], size)  # (P, R, 4) no background
                probs_i = probs_i[:, 1:]  # (P, R)
                if len(probs_i) == 0:
                    out_boxes.append(boxes_i.new_zeros(NUM_REGIONS, 4))
                    out_scores.append(probs_i.new_zeros(NUM_REGIONS))
                    continue
                best = probs_i.argmax(dim=0)  # (R,)
                regions = torch.arange(NUM_REGIONS, device=best.device)
                out_boxes.append(boxes_i[best, regions].float())  # (R, 4)
                out_scores.append(probs_i[best, regions])  # (R,)
            boxes = torch.stack(out_boxes)  # (B, R, 4)
            scores = torch.stack(out_scores)  # (B, R)
            wide = (boxes[..., 2] - boxes[..., 0] > 0) & (boxes[..., 3] - boxes[..., 1] > 0)
            detected = (scores >= self.config.detection_min_score) & wide
            boxes = torch.where(detected[..., None], boxes, torch.zeros_like(boxes))
            # region features: RoIAlign of C5 at the chosen boxes, average pooled
            region_maps = heads.box_roi_pool(feature_maps, list(boxes.unbind(0)), image_list.image_sizes)
            features = region_maps.float().mean(dim=(2, 3)).view(len(boxes), NUM_REGIONS, -1)  # (B, R, C)
            features = features * detected[..., None]
            # back to input pixels (identity here: the transform does not rescale)
            for i, (size, original) in enumerate(zip(image_list.image_sizes, [im.shape[-2:] for im in images])):
                if tuple(size) != tuple(original):
                    boxes[i] = torchvision.models.detection.transform.resize_boxes(boxes[i], size, original)
            return {"boxes": boxes, "scores": scores, "detected": detected, "features": features}
        finally:
            self.train(was_training)


def build_detector(config: DetectorConfig, backbone_weights: str | Path | None = None) -> RegionDetector:
    return RegionDetector(config, backbone_weights)


def save_detector(folder: Path | str, model: RegionDetector, extra: dict | None = None) -> None:
    config = {"kind": KIND, **asdict(model.config), "out_channels": model.config.out_channels,
              "regions": list(REGIONS), **(extra or {})}
    save_model_folder(folder, model, config)


def load_detector(folder: Path | str, device: torch.device | str = "cpu") -> RegionDetector:
    """Rebuild from ``config.json`` and load ``model.safetensors`` (eval mode)."""
    return load_config_model(folder, kind=KIND, config_cls=DetectorConfig, model_cls=RegionDetector, device=device)
