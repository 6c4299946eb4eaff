"""Train the RRG region detector (stage 1): AdamW + ReduceLROnPlateau, best by validation loss.

The loop is ``crrg_clip.train.loop.fit`` (resumable). The validation loss is torchvision's loss
dict in train mode with batch norm in eval mode, under ``no_grad``, with a fixed RNG (the box
sampler draws random proposals), so it is the same number whenever it is computed.
"""

from __future__ import annotations

import contextlib
import logging
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from tqdm import tqdm

from crrg_clip.data.region_dataset import AugmentConfig, DetectorData, Normalize, load_detector_data
from crrg_clip.models.detector import DetectorConfig, RegionDetector, save_detector
from crrg_clip.runinfo import now, write_run_info
from crrg_clip.runtime import describe_device, seed_everything
from crrg_clip.train.loop import (History, batch_loader, epoch_batches, file_stamp, fit, plot_loss_curve,
                                  reset_stale_checkpoint)

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
    eval_every: int | None = None  # validate (and step the scheduler) every K steps too; None = per epoch


def autocast(device: torch.device, amp: str | None):
    """bf16/fp16 autocast on CUDA; elsewhere (and for ``none``) float32, as ``rrg.detector_amp`` says."""
    if amp in (None, "none", "fp32") or device.type != "cuda":
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
    """``train_epoch`` / ``validate`` callables for ``fit``.

    Throughput knobs, all off by default (the CPU demo's weights stay bit-identical):
    ``amp`` (bf16 autocast, CUDA only), ``channels_last`` (NHWC convolutions, CUDA only),
    ``num_workers`` (batches built by DataLoader workers from the memmap cache, pinned on CUDA).
    The inner loop never syncs with the host: losses are summed on the device in float64 (the
    same sums as Python floats) and read, with the finiteness check, once per epoch.
    """

    def __init__(self, model: RegionDetector, train: DetectorData, valid: DetectorData, schedule: Schedule, *,
                 device: torch.device, seed: int, amp: str | None = None, progress: bool = True,
                 channels_last: bool = False, num_workers: int = 0):
        self.model, self.train, self.valid, self.schedule = model.to(device), train, valid, schedule
        self.device, self.seed, self.amp, self.progress = device, seed, amp, progress
        self.channels_last = channels_last and device.type == "cuda"
        self.num_workers = num_workers
        if self.channels_last:
            self.model.to(memory_format=torch.channels_last)
        self.optimizer, self.scheduler = make_optimizer(model, schedule)

    def _to_device(self, images, targets):
        images = images.to(self.device, non_blocking=True)  # (B, 1, S, S)
        if self.channels_last:
            images = images.contiguous(memory_format=torch.channels_last)
        return images, [{k: v.to(self.device, non_blocking=True) for k, v in t.items()} for t in targets]

    def step(self, images, targets) -> dict[str, torch.Tensor]:
        """One optimiser step; the detached losses stay on the device (no host sync)."""
        images, targets = self._to_device(images, targets)
        with autocast(self.device, self.amp):
            losses = self.model(images, targets)
        loss = DETECTOR_LOSS_WEIGHT * sum(losses.values())
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        return {"loss": loss.detach(), **{k: v.detach() for k, v in losses.items()}}

    def _loader(self, batches: list[list[int]], epoch: int):
        return batch_loader(lambda batch: self.train.batch(batch, epoch), batches, num_workers=self.num_workers,
                            pin_memory=self.device.type == "cuda")

    def train_epoch(self, epoch: int, on_step=None) -> dict[str, float]:
        self.model.train()
        batches = epoch_batches(len(self.train), self.schedule.batch_size, seed=self.seed, epoch=epoch)
        sums: dict[str, torch.Tensor] = {}
        loader = self._loader(batches, epoch)
        for batch, (images, targets) in tqdm(zip(batches, loader), total=len(batches),
                                             desc=f"detector epoch {epoch + 1}", disable=not self.progress):
            for k, v in self.step(images, targets).items():
                # float64 on the device: bit for bit the Python-float sum of v.item() * len(batch)
                sums[k] = sums.get(k, 0.0) + v.double() * len(batch)
            if on_step is not None:  # fit's every-K-steps evaluation
                on_step()
        means = {k: float(v) / len(self.train) for k, v in sums.items()}  # the epoch's one host sync
        if not all(math.isfinite(v) for v in means.values()):
            raise FloatingPointError(f"detector loss is not finite in epoch {epoch + 1}: {means}")
        return means

    def validate(self) -> float:
        total = 0.0
        # fork every RNG the validation draws from (the CUDA one too), so training's stream is untouched
        devices = ([self.device.index if self.device.index is not None else torch.cuda.current_device()]
                   if self.device.type == "cuda" else [])
        with torch.no_grad(), torch.random.fork_rng(devices=devices), self.model.loss_mode():
            torch.manual_seed(self.seed)
            for batch in epoch_batches(len(self.valid), self.schedule.batch_size, seed=0, epoch=0, shuffle=False):
                images, targets = self._to_device(*self.valid.batch(batch))
                with autocast(self.device, self.amp):
                    losses = self.model(images, targets)
                # float64 on the device, the same arithmetic as the Python floats it replaces
                total = total + sum(losses.values()).detach().double() * DETECTOR_LOSS_WEIGHT * len(batch)
        return float(total) / len(self.valid)

    def fit(self, checkpoint_dir: Path | str, metrics_path: Path | str) -> History:
        return fit(self.model, self.optimizer, train_epoch=self.train_epoch, validate=self.validate,
                   epochs=self.schedule.epochs, checkpoint_dir=checkpoint_dir, metrics_path=metrics_path,
                   scheduler=self.scheduler, eval_every=self.schedule.eval_every)


def train_detector(*, images_path, index_path, regions_path, split_path, out_dir, checkpoint_dir,
                   model_config: DetectorConfig, backbone_weights: str | None, schedule: Schedule,
                   augment_cfg: AugmentConfig, normalize: Normalize, device: torch.device, seed: int,
                   amp: str | None = None, progress: bool = True, jpeg_draft: bool | None = None,
                   channels_last: bool = False, num_workers: int = 0) -> dict:
    """Train on the subsample's train split, pick the best epoch on its valid split, write the folder.

    ``amp``, ``channels_last``, ``num_workers``: ``rrg.detector_amp``, ``.detector_channels_last``,
    ``.detector_num_workers`` (DetectorTrainer); the defaults are the float32 in-process path.

    ``jpeg_draft`` (``image_cache.jpeg_draft``) is only recorded in config.json, with the cache side."""
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
                "split": str(split_path), "n_train": len(train), "n_valid": len(valid), "amp": amp,
                "channels_last": channels_last}
    # content, not paths and counts: a checkpoint of other images, boxes or splits is not resumed
    inputs = [images_path, index_path, regions_path, split_path] + ([backbone_weights] if backbone_weights else [])
    reset_stale_checkpoint(checkpoint_dir, {**settings, "inputs": file_stamp(*inputs)})
    model = RegionDetector(model_config, backbone_weights)
    log.info("detector: amp %s, channels_last %s, %d loader workers", amp, channels_last, num_workers)
    trainer = DetectorTrainer(model, train, valid, schedule, device=device, seed=seed, amp=amp, progress=progress,
                              channels_last=channels_last, num_workers=num_workers)
    t0 = time.perf_counter()
    history = trainer.fit(checkpoint_dir, out_dir / "metrics.tsv")
    seconds = time.perf_counter() - t0
    # the cache the detector was trained on: what `crrg-clip report` letterboxes new images to
    image_cache = {"size": int(train.images.shape[1]), "jpeg_draft": jpeg_draft}
    save_detector(out_dir, model.cpu(), extra={"best_epoch": history.best_epoch, "best_val_loss": history.best_val,
                                               "image_cache": image_cache})
    plot_loss_curve(out_dir / "metrics.tsv", out_dir / "loss_curve.png", "RRG detector")
    summary = {"best_epoch": history.best_epoch, "best_val_loss": history.best_val, "train_seconds": seconds,
               "n_train": len(train), "n_valid": len(valid),
               "skipped_no_valid_box": {"train": len(train.skipped_no_boxes), "valid": len(valid.skipped_no_boxes)},
               "left_out": {"train": train.left_out(), "valid": valid.left_out()}}
    write_run_info(out_dir / "run.json", started=started, device=describe_device(device), seed=seed,
                   settings=settings, extra={"summary": summary})
    return summary
