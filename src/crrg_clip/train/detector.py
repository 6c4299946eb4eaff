"""Train the RRG region detector (stage 1): AdamW + ReduceLROnPlateau, best by validation loss.

The loop is ``crrg_clip.train.loop.fit`` (resumable). The validation loss is torchvision's loss
dict in train mode with batch norm in eval mode, under ``no_grad``, with a fixed RNG (the box
sampler draws random proposals), so it is the same number whenever it is computed.
"""

from __future__ import annotations

import contextlib
import logging
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from tqdm import tqdm

from crrg_clip.data.region_dataset import AugmentConfig, DetectorData, Normalize, load_detector_data
from crrg_clip.models.detector import DetectorConfig, RegionDetector, save_detector
from crrg_clip.runinfo import now, write_run_info
from crrg_clip.runtime import describe_device, seed_everything
from crrg_clip.train.loop import History, epoch_batches, fit, plot_loss_curve, reset_stale_checkpoint

log = logging.getLogger(__name__)

DETECTOR_LOSS_WEIGHT = 1.0  # PROTOCOL stage weight (1 x det)


@dataclass
class Schedule:
    """A variant's stage schedule (config ``rrg.variants[v].detector`` / ``.selector``)."""

    epochs: int
    batch_size: int
    lr: float
    weight_decay: float = 0.01
    factor: float = 0.5
    cooldown: int = 5
    patience: int = 5


def autocast(device: torch.device, amp: str | None):
    if amp in (None, "none", "fp32"):
        return contextlib.nullcontext()
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}[amp]
    return torch.autocast(device_type=device.type, dtype=dtype)


def make_optimizer(model: torch.nn.Module, schedule: Schedule):
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=schedule.lr, weight_decay=schedule.weight_decay)
    scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(
        optimizer, mode="min", factor=schedule.factor, patience=schedule.patience, cooldown=schedule.cooldown)
    return optimizer, scheduler


class DetectorTrainer:
    """``train_epoch`` / ``validate`` callables for ``fit``."""

    def __init__(self, model: RegionDetector, train: DetectorData, valid: DetectorData, schedule: Schedule, *,
                 device: torch.device, seed: int, amp: str | None = None, progress: bool = True):
        self.model, self.train, self.valid, self.schedule = model.to(device), train, valid, schedule
        self.device, self.seed, self.amp, self.progress = device, seed, amp, progress
        self.optimizer, self.scheduler = make_optimizer(model, schedule)

    def _to_device(self, images, targets):
        return images.to(self.device), [{k: v.to(self.device) for k, v in t.items()} for t in targets]

    def step(self, images, targets) -> dict[str, float]:
        images, targets = self._to_device(images, targets)
        with autocast(self.device, self.amp):
            losses = self.model(images, targets)
        loss = DETECTOR_LOSS_WEIGHT * sum(losses.values())
        if not torch.isfinite(loss):
            raise FloatingPointError(f"detector loss is {loss.item()} ({ {k: v.item() for k, v in losses.items()} })")
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        return {"loss": loss.item(), **{k: v.item() for k, v in losses.items()}}

    def train_epoch(self, epoch: int) -> dict[str, float]:
        self.model.train()
        batches = epoch_batches(len(self.train), self.schedule.batch_size, seed=self.seed, epoch=epoch)
        sums: dict[str, float] = {}
        for batch in tqdm(batches, desc=f"detector epoch {epoch + 1}", disable=not self.progress):
            for k, v in self.step(*self.train.batch(batch, epoch)).items():
                sums[k] = sums.get(k, 0.0) + v * len(batch)
        return {k: v / len(self.train) for k, v in sums.items()}

    def validate(self) -> float:
        total = 0.0
        with torch.no_grad(), torch.random.fork_rng(devices=[]), self.model.loss_mode():
            torch.manual_seed(self.seed)
            for batch in epoch_batches(len(self.valid), self.schedule.batch_size, seed=0, epoch=0, shuffle=False):
                images, targets = self._to_device(*self.valid.batch(batch))
                with autocast(self.device, self.amp):
                    losses = self.model(images, targets)
                total += DETECTOR_LOSS_WEIGHT * float(sum(losses.values())) * len(batch)
        return total / len(self.valid)

    def fit(self, checkpoint_dir: Path | str, metrics_path: Path | str) -> History:
        return fit(self.model, self.optimizer, train_epoch=self.train_epoch, validate=self.validate,
                   epochs=self.schedule.epochs, checkpoint_dir=checkpoint_dir, metrics_path=metrics_path,
                   scheduler=self.scheduler)


def train_detector(*, images_path, index_path, regions_path, split_path, out_dir, checkpoint_dir,
                   model_config: DetectorConfig, backbone_weights: str | None, schedule: Schedule,
                   augment_cfg: AugmentConfig, normalize: Normalize, device: torch.device, seed: int,
                   amp: str | None = None, progress: bool = True) -> dict:
    """Train on the subsample's train split, pick the best epoch on its valid split, write the folder."""
    started = now()
    seed_everything(seed)
    out_dir = Path(out_dir)
    common = dict(images_path=images_path, index_path=index_path, regions_path=regions_path,
                  split_path=split_path, normalize=normalize, require_boxes=True)
    train = load_detector_data(split="train", augment_cfg=augment_cfg, seed=seed, **common)
    valid = load_detector_data(split="valid", augment_cfg=None, seed=seed, **common)
    log.info("detector: %d training images, %d validation images", len(train), len(valid))
    settings = {"model": asdict(model_config), "backbone_weights": backbone_weights, "schedule": asdict(schedule),
                "augment": asdict(augment_cfg), "normalize": asdict(normalize), "seed": seed,
                "split": str(split_path), "n_train": len(train), "n_valid": len(valid), "amp": amp}
    reset_stale_checkpoint(checkpoint_dir, settings)
    model = RegionDetector(model_config, backbone_weights)
    trainer = DetectorTrainer(model, train, valid, schedule, device=device, seed=seed, amp=amp, progress=progress)
    t0 = time.perf_counter()
    history = trainer.fit(checkpoint_dir, out_dir / "metrics.tsv")
    seconds = time.perf_counter() - t0
    save_detector(out_dir, model.cpu(), extra={"best_epoch": history.best_epoch, "best_val_loss": history.best_val})
    plot_loss_curve(out_dir / "metrics.tsv", out_dir / "loss_curve.png", "RRG detector")
    summary = {"best_epoch": history.best_epoch, "best_val_loss": history.best_val, "train_seconds": seconds,
               "n_train": len(train), "n_valid": len(valid),
               "skipped_no_valid_box": {"train": len(train.skipped_no_boxes), "valid": len(valid.skipped_no_boxes)}}
    write_run_info(out_dir / "run.json", started=started, device=describe_device(device), seed=seed,
                   settings=settings, extra={"summary": summary})
    return summary
