"""R-CLIP pretraining: AdamW, cosine schedule with linear warmup (stepped per batch), resumable.

The validation loss (the same weighted total as training, on fixed, un-augmented views of
the subsample's ``valid`` split) picks the best epoch; the model folder holds that epoch.
"""

from __future__ import annotations

import logging
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from tqdm import tqdm

from ..data.clip_dataset import CLIPViews, TextCollate, augment_from_config, build_items
from ..data.normalize import normalization
from ..models.clip import build_clip, save_clip
from ..models.clip_losses import RCLIPLoss
from ..models.convirt import build_convirt_training
from ..runinfo import now, write_run_info
from ..runtime import describe_device, seed_everything
from .loop import epoch_batches, file_stamp, fit, plot_loss_curve, reset_stale_checkpoint

log = logging.getLogger(__name__)


@dataclass
class CLIPSettings:
    image_encoder: str = "resnet50"
    image_weights: str | None = None
    text_model: str = "emilyalsentzer/Bio_ClinicalBERT"
    image_size: int = 224
    max_text_tokens: int = 256
    projection_dim: int = 512
    temperature_init: float = 0.07
    image_to_image_loss_weight: float = 1.0
    text_to_text_loss_weight: float = 0.5
    loss_ratio: float = 1.0
    epochs: int = 5
    batch_size: int = 32
    lr: float = 5e-5
    weight_decay: float = 1e-4
    warmup_epochs: float = 1.0
    normalize: dict = field(default_factory=lambda: {"mean": 0.471, "std": 0.302})
    normalization: str = "dataset"  # or "imagenet" (data/normalize.py)
    unit: str = "image"  # or "study": one training item per study (data/clip_dataset.py)
    augment: dict = field(default_factory=dict)
    num_workers: int = 0
    amp: str = "bf16"
    channels_last: bool = False  # NHWC image tower on CUDA (inputs follow the weights' format)
    loss: str = "cxr_clip"  # or "convirt": ConVIRT's heads, pooling, loss and optimiser (models/convirt.py)
    convirt: dict = field(default_factory=dict)  # the `convirt` config section

    @classmethod
    def from_config(cls, values: dict, **overrides) -> "CLIPSettings":
        known = {k: v for k, v in {**values, **overrides}.items() if k in cls.__dataclass_fields__}
        return cls(**known)


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


def train_clip(*, texts_path: Path | str, backtranslations_path: Path | str, cache_images: Path | str,
               cache_index: Path | str, out_dir: Path | str, checkpoint_dir: Path | str,
               settings: CLIPSettings, seed: int, device: torch.device, text_source: str = "",
               progress: bool = True) -> dict:
    """Train one R-CLIP model and write its folder (config, weights, metrics, loss curve, run.json)."""
    started = now()
    out_dir = Path(out_dir)
    seed_everything(seed)
    texts = pd.read_parquet(texts_path)
    back = pd.read_parquet(backtranslations_path)
    index = pd.read_parquet(cache_index)
    images = np.load(cache_images, mmap_mode="r")  # (N, S, S) uint8
    if images.ndim != 3 or len(images) != len(index):
        raise ValueError(f"{cache_images}: expected (N, S, S) with N = {len(index)} rows of {cache_index}, "
                         f"got shape {images.shape}")
    train_items = build_items(texts, back, index, split="train", unit=settings.unit, texts_path=str(texts_path),
                              bt_path=str(backtranslations_path), index_path=str(cache_index))
    valid_items = build_items(texts, back, index, split="valid", unit=settings.unit, texts_path=str(texts_path),
                              bt_path=str(backtranslations_path), index_path=str(cache_index))
    n_second = train_items.n_with_second_image()
    log.info("R-CLIP %s: %d training %ss (%d with a second image of the study), %d validation %ss",
             text_source, len(train_items), settings.unit, n_second, len(valid_items), settings.unit)

    reset_stale_checkpoint(checkpoint_dir, {
        "settings": {k: v for k, v in asdict(settings).items() if k != "num_workers"}, "seed": seed,
        "inputs": file_stamp(texts_path, backtranslations_path, cache_images, cache_index),
    })
    if settings.loss == "convirt":
        model, tokenizer, criterion, optimizer = build_convirt_training(settings, settings.convirt)
        model.to(device)
    else:
        model, tokenizer = build_clip(image_encoder=settings.image_encoder, image_weights=settings.image_weights,
                                      text_model=settings.text_model, projection_dim=settings.projection_dim,
                                      temperature_init=settings.temperature_init)
        model.to(device)
        criterion = RCLIPLoss(settings.image_to_image_loss_weight, settings.text_to_text_loss_weight,
                              settings.loss_ratio)
        optimizer = torch.optim.AdamW(param_groups(model, settings.weight_decay), lr=settings.lr)

    if settings.channels_last and device.type == "cuda":
        model.to(memory_format=torch.channels_last)  # 4-D conv weights only; saved contiguous (modelio)
    norm = normalization(settings.normalization, settings.normalize)
    augment = augment_from_config(settings.augment)
    train_set = CLIPViews(train_items, images, image_size=settings.image_size, normalize=norm,
                          augment=augment, seed=seed, train=True)
    valid_set = CLIPViews(valid_items, images, image_size=settings.image_size, normalize=norm,
                          augment=None, seed=seed, train=False)
    collate = TextCollate(tokenizer, settings.max_text_tokens)
    n_batches = len(epoch_batches(len(train_set), settings.batch_size, seed=seed, epoch=0, drop_last=True))
    total_steps = settings.epochs * n_batches
    warmup_steps = round(settings.warmup_epochs * n_batches)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: cosine_with_warmup(step, warmup_steps=warmup_steps, total_steps=total_steps))
    use_amp = device.type == "cuda" and settings.amp == "bf16"

    def loader(dataset, batches):
        return torch.utils.data.DataLoader(dataset, batch_sampler=batches, collate_fn=collate,
                                           num_workers=settings.num_workers,
                                           pin_memory=device.type == "cuda")

    def train_epoch(epoch: int) -> dict[str, float]:
        train_set.set_epoch(epoch)
        batches = epoch_batches(len(train_set), settings.batch_size, seed=seed, epoch=epoch, drop_last=True)
        sums: dict[str, float] = {}
        count = 0
        for batch in tqdm(loader(train_set, batches), total=len(batches), desc=f"clip epoch {epoch}",
                          disable=not progress, mininterval=5):
            x1, x2, t1, t2 = _to(batch, device)
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=use_amp):
                losses = criterion(model(x1, x2, t1, t2))
            optimizer.zero_grad(set_to_none=True)
            losses["loss"].backward()
            optimizer.step()
            scheduler.step()
            b = x1.shape[0]
            for k, v in losses.items():
                # float64 on the device (no host sync per step): the same sum as Python floats
                sums[k] = sums.get(k, 0.0) + v.detach().double() * b
            count += b
        return {k: float(v) / count for k, v in sums.items()}

    def validate() -> float:
        total, count = 0.0, 0
        for batch in loader(valid_set, validation_batches(len(valid_set), settings.batch_size)):
            x1, x2, t1, t2 = _to(batch, device)
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=use_amp):
                losses = criterion(model(x1, x2, t1, t2))
            total = total + losses["loss"].detach().double() * x1.shape[0]  # on the device, float64
            count += x1.shape[0]
        return float(total) / count

    metrics_path = out_dir / "metrics.tsv"
    history = fit(model, optimizer, train_epoch=train_epoch, validate=validate, epochs=settings.epochs,
                  checkpoint_dir=checkpoint_dir, metrics_path=metrics_path, scheduler=scheduler)
    model.to("cpu")
    save_clip(out_dir, model, tokenizer, extra={
        "text_source": text_source, "image_size": settings.image_size,
        "max_text_tokens": settings.max_text_tokens, "normalize": norm.record(), "unit": settings.unit,
        "best_epoch": history.best_epoch, "best_val_loss": history.best_val,
        "temperature": float(1.0 / model.scale().detach()), "loss": settings.loss,
    })
    plot_loss_curve(metrics_path, out_dir / "loss_curve.png", f"R-CLIP ({text_source}), seed {seed}")
    write_run_info(out_dir / "run.json", started=started, device=describe_device(device), seed=seed,
                   settings=asdict(settings), extra={
                       "n_train": len(train_items), "n_valid": len(valid_items),
                       "n_train_with_second_image": n_second, "best_epoch": history.best_epoch,
                       "inputs": {"texts": str(texts_path), "back_translations": str(backtranslations_path),
                                  "cache": str(cache_images)}})
    return {"best_epoch": history.best_epoch, "best_val_loss": history.best_val}
