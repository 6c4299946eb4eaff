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
DETECTION_RULES = ("best_score", "argmax_class")
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
    # top-1 box / "detected" rule (PROTOCOL.md); folders saved before the key read best_score
    detection_rule: str = "best_score"
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
        if self.detection_rule not in DETECTION_RULES:
            raise ValueError(f"detection_rule {self.detection_rule!r}: expected one of {DETECTION_RULES}")
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

    def save_pretrained(self, folder: Path | str, extra: dict | None = None) -> None:
        config = {"kind": KIND, **asdict(self.config), "out_channels": self.config.out_channels,
                  "regions": list(REGIONS), **(extra or {})}
        save_model_folder(folder, self, config)

    @classmethod
    def from_pretrained(cls, folder: Path | str, device: torch.device | str = "cpu") -> "RegionDetector":
        """Rebuilt from ``config.json`` with ``model.safetensors`` loaded, in eval mode."""
        return load_config_model(folder, kind=KIND, config_cls=DetectorConfig, model_cls=cls, device=device)

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

        Returns ``boxes (B, R, 4)`` xyxy in input pixels, ``scores (B, R)``, ``detected (B, R)``
        bool and ``features (B, R, C)`` (RoIAlign of C5, average pooled), chosen per image by
        ``config.detection_rule`` (``top1_per_region``). A region that is not detected has
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
            picks = []
            for boxes_i, probs_i, props_i, size in zip(decoded.split(counts), probs.split(counts), proposals,
                                                        image_list.image_sizes):
                boxes_i = box_ops.clip_boxes_to_image(boxes_i[:, 1:], size)  # (P, R, 4) no background
                picks.append(top1_per_region(probs_i, boxes_i, props_i, self.config.detection_rule,
                                             self.config.detection_min_score))
            boxes, scores, detected, feature_boxes = (torch.stack(t) for t in zip(*picks))  # (B, R, ...)
            region_maps = heads.box_roi_pool(feature_maps, list(feature_boxes.unbind(0)), image_list.image_sizes)
            features = region_maps.float().mean(dim=(2, 3)).view(len(boxes), NUM_REGIONS, -1)  # (B, R, C)
            features = features * detected[..., None]
            # back to input pixels (identity here: the transform does not rescale)
            for i, (size, original) in enumerate(zip(image_list.image_sizes, [im.shape[-2:] for im in images])):
                if tuple(size) != tuple(original):
                    boxes[i] = torchvision.models.detection.transform.resize_boxes(boxes[i], size, original)
            return {"boxes": boxes, "scores": scores, "detected": detected, "features": features}
        finally:
            self.train(was_training)


def top1_per_region(probs: torch.Tensor, boxes: torch.Tensor, proposals: torch.Tensor, rule: str,
                    min_score: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """One image's top-1 box per region.

    probs (P, R+1) softmax with background at 0; boxes (P, R, 4) class-specific regressed boxes;
    proposals (P, 4). Returns boxes (R, 4), scores (R,), detected (R,) bool and the boxes to pool
    the features at (R, 4); boxes and feature boxes are 0 where not detected.

    ``best_score``: each region takes the proposal with its highest probability for it, detected
    when that probability >= min_score and the box has area; features at the regressed box.
    ``argmax_class`` (the paper's code): each proposal goes to its argmax class (background
    included); a region is detected when any proposal goes to it (no threshold), takes the
    top-scoring proposal among those, and its features come from that proposal's box (the RoI).
    """
    fg = probs[:, 1:]  # (P, R)
    num_regions = fg.shape[1]
    if len(fg) == 0:
        zeros = probs.new_zeros(num_regions, 4)
        return zeros, probs.new_zeros(num_regions), torch.zeros(num_regions, dtype=torch.bool,
                                                                 device=probs.device), zeros
    regions = torch.arange(num_regions, device=probs.device)
    if rule == "best_score":
        best = fg.argmax(dim=0)  # (R,)
        chosen, scores = boxes[best, regions].float(), fg[best, regions]
        wide = (chosen[:, 2] - chosen[:, 0] > 0) & (chosen[:, 3] - chosen[:, 1] > 0)
        detected = (scores >= min_score) & wide
        chosen = torch.where(detected[:, None], chosen, torch.zeros_like(chosen))
        return chosen, scores, detected, chosen
    if rule != "argmax_class":
        raise ValueError(f"detection_rule {rule!r}: expected one of {DETECTION_RULES}")
    assigned = probs.argmax(dim=1)[:, None] == (regions[None, :] + 1)  # (P, R) proposal goes to region
    detected = assigned.any(dim=0)  # (R,)
    masked = torch.where(assigned, fg, torch.full_like(fg, -1.0))  # (P, R)
    best = masked.argmax(dim=0)  # (R,) top-scoring assigned proposal
    # an undetected region reports its best probability anywhere (information only)
    scores = torch.where(detected, fg[best, regions], fg.max(dim=0).values)
    keep = detected[:, None]
    chosen = torch.where(keep, boxes[best, regions].float(), boxes.new_zeros(num_regions, 4).float())
    feature_boxes = torch.where(keep, proposals[best].float(), chosen.new_zeros(num_regions, 4))
    return chosen, scores, detected, feature_boxes


def build_detector(config: DetectorConfig, backbone_weights: str | Path | None = None) -> RegionDetector:
    return RegionDetector(config, backbone_weights)
