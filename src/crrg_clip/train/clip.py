"""R-CLIP pretraining: AdamW, cosine schedule with linear warmup (stepped per batch), resumable.

The validation loss (the same weighted total as training, on fixed, un-augmented views of
the subsample's ``valid`` split) picks the best epoch; the model folder holds that epoch.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from tqdm import tqdm

from ..data.clip_dataset import CLIPViews, TextCollate, augment_from_config, build_items
from ..data.normalize import normalization
from ..models.clip import build_clip
from ..models.clip_losses import RCLIPLoss
from ..models.convirt import build_convirt_training
from ..runinfo import now, write_run_info
from ..runtime import describe_device, seed_everything
from ..settings import CLIPSettings, to_params
from .loop import Trainer, epoch_batches, file_stamp, plot_loss_curve, reset_stale_checkpoint, runtime_record

log = logging.getLogger(__name__)


def cosine_with_warmup(step: int, *, warmup_steps: int, total_steps: int) -> float:
    """LR multiplier: linear warmup to 1 over ``warmup_steps``, then cosine decay to 0."""
    if warmup_steps > 0 and step < warmup_steps:
        return (step + 1) / warmup_steps
    progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
    return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))


def param_groups(model: torch.nn.Module, weight_decay: float) -> list[dict]:
    """Weight decay on matrices and kernels only; biases, norms and the temperature are not decayed."""
    decay, no_decay = [], []
    for _, p in model.named_parameters():
        if p.requires_grad:
            (decay if p.dim() >= 2 else no_decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def validation_batches(n: int, batch_size: int) -> list[list[int]]:
    """Fixed-order batches; a trailing batch of one (no negatives) joins the one before it."""
    batches = epoch_batches(n, batch_size, seed=0, epoch=0, shuffle=False)
    if len(batches) > 1 and len(batches[-1]) == 1:
        batches[-2] += batches.pop()
    return batches


def _to(batch, device):
    x1, x2, t1, t2 = batch
    return (x1.to(device, non_blocking=True), x2.to(device, non_blocking=True),
            {k: v.to(device) for k, v in t1.items()}, {k: v.to(device) for k, v in t2.items()})


def build_training(settings: CLIPSettings, device: torch.device):
    """(model on ``device``, tokenizer, criterion, optimizer) of the settings' objective."""
    if settings.loss == "convirt":
        model, tokenizer, criterion, optimizer = build_convirt_training(settings, settings.convirt)
        model.to(device)
        return model, tokenizer, criterion, optimizer
    model, tokenizer = build_clip(image_encoder=settings.image_encoder, image_weights=settings.image_weights,
                                  text_model=settings.text_model, projection_dim=settings.projection_dim,
                                  temperature_init=settings.temperature_init)
    model.to(device)
    criterion = RCLIPLoss(settings.image_to_image_loss_weight, settings.text_to_text_loss_weight, settings.loss_ratio)
    optimizer = torch.optim.AdamW(param_groups(model, settings.weight_decay), lr=settings.lr)
    return model, tokenizer, criterion, optimizer


class CLIPTrainer(Trainer):
    """Two image views and two texts per item; the LR follows a per-batch warmup + cosine schedule.

    The validation loss is the same weighted total on fixed, un-augmented views.
    """

    def __init__(self, model, criterion, optimizer, collate, train_set: CLIPViews, valid_set: CLIPViews,
                 settings: CLIPSettings, *, device: torch.device, seed: int, num_workers: int = 0,
                 progress: bool = True):
        self.model, self.criterion, self.optimizer, self.collate = model, criterion, optimizer, collate
        self.train_set, self.valid_set, self.settings = train_set, valid_set, settings
        self.device, self.seed, self.num_workers, self.progress = device, seed, num_workers, progress
        if settings.channels_last and device.type == "cuda":
            model.to(memory_format=torch.channels_last)  # 4-D conv weights only; saved contiguous (modelio)
        self.epochs = settings.epochs
        n_batches = len(epoch_batches(len(train_set), settings.batch_size, seed=seed, epoch=0, drop_last=True))
        total_steps, warmup_steps = settings.epochs * n_batches, round(settings.warmup_epochs * n_batches)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            optimizer, lambda step: cosine_with_warmup(step, warmup_steps=warmup_steps, total_steps=total_steps))
        self.use_amp = device.type == "cuda" and settings.amp == "bf16"

    def _loader(self, dataset, batches):
        return torch.utils.data.DataLoader(dataset, batch_sampler=batches, collate_fn=self.collate,
                                           num_workers=self.num_workers, pin_memory=self.device.type == "cuda")

    def _losses(self, batch) -> dict[str, torch.Tensor]:
        x1, x2, t1, t2 = _to(batch, self.device)  # x: (B, C, S, S); t: tokenised texts
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.use_amp):
            return self.criterion(self.model(x1, x2, t1, t2))

    def step(self, batch) -> dict[str, torch.Tensor]:
        losses = self._losses(batch)
        self.optimizer.zero_grad(set_to_none=True)
        losses["loss"].backward()
        self.optimizer.step()
        self.scheduler.step()
        return {k: v.detach() for k, v in losses.items()}

    def train_epoch(self, epoch: int, on_step=None) -> dict[str, float]:
        self.train_set.set_epoch(epoch)
        batches = epoch_batches(len(self.train_set), self.settings.batch_size, seed=self.seed, epoch=epoch,
                                drop_last=True)
        sums: dict[str, float] = {}
        count = 0
        for batch in tqdm(self._loader(self.train_set, batches), total=len(batches), desc=f"clip epoch {epoch}",
                          disable=not self.progress, mininterval=5):
            b = batch[0].shape[0]
            for k, v in self.step(batch).items():
                # float64 on the device (no host sync per step): the same sum as Python floats
                sums[k] = sums.get(k, 0.0) + v.double() * b
            count += b
            if on_step is not None:
                on_step()
        return {k: float(v) / count for k, v in sums.items()}

    def validate(self) -> float:
        total, count = 0.0, 0
        for batch in self._loader(self.valid_set, validation_batches(len(self.valid_set), self.settings.batch_size)):
            total = total + self._losses(batch)["loss"].detach().double() * batch[0].shape[0]  # on the device
            count += batch[0].shape[0]
        return float(total) / count


def train_clip(settings: CLIPSettings, inputs, outputs, *, device: torch.device, seed: int, checkpoint_dir,
               text_source: str, num_workers: int = 0, progress: bool = True) -> dict:
    """Rules train_clip / train_convirt: ``inputs`` texts, backtranslations, cache_images, cache_index;
    ``outputs["model"]`` gets the folder (config, weights, tokenizer, metrics, loss curve, run.json).
    ``text_source`` is recorded (the text wildcard, or ConVIRT's description)."""
    started = now()
    out_dir = Path(outputs["model"])
    seed_everything(seed)
    paths = {k: inputs[k] for k in ("texts", "backtranslations", "cache_images", "cache_index")}
    texts, back, index = (pd.read_parquet(paths[k]) for k in ("texts", "backtranslations", "cache_index"))
    images = np.load(paths["cache_images"], mmap_mode="r")  # (N, S, S) uint8
    if images.ndim != 3 or len(images) != len(index):
        raise ValueError(f"{paths['cache_images']}: expected (N, S, S) with N = {len(index)} rows of "
                         f"{paths['cache_index']}, got shape {images.shape}")
    items = {split: build_items(texts, back, index, split=split, unit=settings.unit, texts_path=str(paths["texts"]),
                                bt_path=str(paths["backtranslations"]), index_path=str(paths["cache_index"]))
             for split in ("train", "valid")}
    n_second = items["train"].n_with_second_image()
    log.info("R-CLIP %s: %d training %ss (%d with a second image of the study), %d validation %ss", text_source,
             len(items["train"]), settings.unit, n_second, len(items["valid"]), settings.unit)
    reset_stale_checkpoint(checkpoint_dir, {"settings": to_params(settings), "seed": seed,
                                            "inputs": file_stamp(*paths.values())})
    model, tokenizer, criterion, optimizer = build_training(settings, device)
    norm = normalization(settings.normalization, settings.normalize)
    views = {split: CLIPViews(items[split], images, image_size=settings.image_size, normalize=norm,
                              augment=augment_from_config(settings.augment) if split == "train" else None,
                              seed=seed, train=split == "train") for split in ("train", "valid")}
    trainer = CLIPTrainer(model, criterion, optimizer, TextCollate(tokenizer, settings.max_text_tokens),
                          views["train"], views["valid"], settings, device=device, seed=seed, num_workers=num_workers,
                          progress=progress)
    metrics_path = out_dir / "metrics.tsv"
    history = trainer.fit(checkpoint_dir, metrics_path)
    model.to("cpu")
    model.save_pretrained(out_dir, tokenizer=tokenizer, extra={
        "text_source": text_source, "image_size": settings.image_size,
        "max_text_tokens": settings.max_text_tokens, "normalize": norm.record(), "unit": settings.unit,
        "best_epoch": history.best_epoch, "best_val_loss": history.best_val,
        "temperature": float(1.0 / model.scale().detach()), "loss": settings.loss,
    })
    plot_loss_curve(metrics_path, out_dir / "loss_curve.png", f"R-CLIP ({text_source}), seed {seed}")
    write_run_info(out_dir / "run.json", started=started, device=describe_device(device), seed=seed,
                   settings=to_params(settings), extra={
                       "runtime": runtime_record(device, num_workers), "text_source": text_source,
                       "n_train": len(items["train"]), "n_valid": len(items["valid"]),
                       "n_train_with_second_image": n_second, "best_epoch": history.best_epoch,
                       "inputs": {"texts": str(paths["texts"]), "back_translations": str(paths["backtranslations"]),
                                  "cache": str(paths["cache_images"])}})
    return {"best_epoch": history.best_epoch, "best_val_loss": history.best_val}
