"""Train the RRG region detector (stage 1): AdamW + ReduceLROnPlateau, best by validation loss.

The loop is ``crrg_clip.train.loop.fit`` (resumable). The validation loss is torchvision's loss
dict in train mode with batch norm in eval mode, under ``no_grad``, with a fixed RNG (the box
sampler draws random proposals), so it is the same number whenever it is computed.
"""

from __future__ import annotations

import logging
import math
import time
from pathlib import Path

import torch
from tqdm import tqdm

from crrg_clip.data.region_dataset import AugmentConfig, DetectorData, Normalize, load_detector_data
from crrg_clip.models.detector import DetectorConfig, RegionDetector
from crrg_clip.runinfo import now, write_run_info
from crrg_clip.runtime import describe_device, seed_everything
from crrg_clip.settings import DetectorSettings, to_params
from crrg_clip.train.loop import (Schedule, Trainer, autocast, batch_loader, epoch_batches, file_stamp,
                                  make_optimizer, plot_loss_curve, reset_stale_checkpoint, runtime_record)

log = logging.getLogger(__name__)

DETECTOR_LOSS_WEIGHT = 1.0  # PROTOCOL stage weight (1 x det)


class DetectorTrainer(Trainer):
    """The detector's ``step`` / ``train_epoch`` / ``validate`` for ``fit``.

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
        self.epochs, self.eval_every = schedule.epochs, schedule.eval_every

    def _to_device(self, images, targets):
        images = images.to(self.device, non_blocking=True)  # (B, 1, S, S)
        if self.channels_last:
            images = images.contiguous(memory_format=torch.channels_last)
        return images, [{k: v.to(self.device, non_blocking=True) for k, v in t.items()} for t in targets]

    def step(self, batch) -> dict[str, torch.Tensor]:
        """One optimiser step on ``(images, targets)``; the detached losses stay on the device (no host sync)."""
        images, targets = self._to_device(*batch)
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
        for batch, images_targets in tqdm(zip(batches, loader), total=len(batches),
                                          desc=f"detector epoch {epoch + 1}", disable=not self.progress):
            for k, v in self.step(images_targets).items():
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


def train_detector(settings: DetectorSettings, inputs, outputs, *, device: torch.device, seed: int,
                   checkpoint_dir, num_workers: int = 0, progress: bool = True) -> dict:
    """Rule train_detector: ``inputs`` images, index, regions, split; the folder of ``outputs["config"]``
    gets config.json, model.safetensors, metrics.tsv, loss_curve.png and run.json.

    Trains on the subsample's train split and picks the best epoch on its valid split;
    ``num_workers``: DataLoader workers building the batches (the same batches either way).
    """
    started = now()
    seed_everything(seed)
    out_dir = Path(outputs["config"]).parent
    model_config = DetectorConfig(frozen_batchnorm=settings.backbone_weights is not None, **settings.model)
    paths = [inputs["images"], inputs["index"], inputs["regions"], inputs["split"]]
    common = dict(images_path=paths[0], index_path=paths[1], regions_path=paths[2], split_path=paths[3],
                  normalize=Normalize(model_config.normalize_mean, model_config.normalize_std), require_boxes=True)
    train = load_detector_data(split="train", augment_cfg=AugmentConfig(**settings.augment), seed=seed, **common)
    valid = load_detector_data(split="valid", augment_cfg=None, seed=seed, **common)
    log.info("detector: %d training images, %d validation images", len(train), len(valid))
    # content, not paths and counts: a checkpoint of other images, boxes or splits is not resumed
    stamped = paths + ([settings.backbone_weights] if settings.backbone_weights else [])
    reset_stale_checkpoint(checkpoint_dir, {"settings": to_params(settings), "seed": seed,
                                            "inputs": file_stamp(*stamped)})
    model = RegionDetector(model_config, settings.backbone_weights)
    log.info("detector: amp %s, channels_last %s, %d loader workers", settings.amp, settings.channels_last,
             num_workers)
    trainer = DetectorTrainer(model, train, valid, settings.schedule, device=device, seed=seed, amp=settings.amp,
                              progress=progress, channels_last=settings.channels_last, num_workers=num_workers)
    t0 = time.perf_counter()
    history = trainer.fit(checkpoint_dir, out_dir / "metrics.tsv")
    seconds = time.perf_counter() - t0
    # the cache the detector was trained on: what `crrg-clip report` letterboxes new images to
    image_cache = {"size": int(train.images.shape[1]), "jpeg_draft": settings.jpeg_draft}
    model.cpu().save_pretrained(out_dir, extra={"best_epoch": history.best_epoch, "best_val_loss": history.best_val,
                                                "image_cache": image_cache})
    plot_loss_curve(out_dir / "metrics.tsv", out_dir / "loss_curve.png", "RRG detector")
    summary = {"best_epoch": history.best_epoch, "best_val_loss": history.best_val, "train_seconds": seconds,
               "n_train": len(train), "n_valid": len(valid),
               "skipped_no_valid_box": {"train": len(train.skipped_no_boxes), "valid": len(valid.skipped_no_boxes)},
               "left_out": {"train": train.left_out(), "valid": valid.left_out()}}
    write_run_info(out_dir / "run.json", started=started, device=describe_device(device), seed=seed,
                   settings=to_params(settings), extra={"runtime": runtime_record(device, num_workers),
                                                        "inputs": [str(p) for p in paths], "summary": summary})
    return summary
