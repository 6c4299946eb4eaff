"""Train the RSNA linear probe on a frozen encoder; predict the test split.

- Training images (RSNA ``train`` split, ``in_train_subset``): RandomResizedCrop to
  ``probe.image_size`` with area fraction in ``probe.crop_scale`` (aspect 3/4..4/3) and a
  brightness / contrast jitter (and, with ``probe.clahe.p`` > 0, CLAHE between the crop and
  the jitter, as the paper's code), drawn fresh each epoch from a generator seeded by
  ``(seed, epoch, index)``. The features are therefore recomputed every epoch (the faithful
  path; caching frozen features is only valid without augmentation).
- Validation and test images: Resize + CenterCrop to ``probe.image_size``, no randomness,
  so their frozen features are computed once and cached for every epoch.
- ``standardize``: the head reads features standardised with the mean / std of the training
  images' frozen features (their deterministic views), fixed before the first step. A linear
  function of the features all the same; it makes one learning rate fit every encoder.
- Model selection: the epoch with the lowest validation BCE (``fit`` keeps it). The
  validation loss is smoother than the AUC on small validation sets; the AUC is logged per
  epoch and recorded for the chosen epoch in run.json.
- Optimiser: AdamW on the head, ``probe.weight_decay``; ``probe.schedule`` ``constant`` or
  ``cosine`` (linear warm-up over ``probe.warmup_epochs``, then cosine decay to 0, stepped per
  batch: the paper's fine-tune config, Appendix Table 6).
- Images are normalised as ``rclip.normalization`` says (``data/normalize.py``).
- Batches come from ``epoch_batches`` without ``drop_last``: 3 images with batch 32 still
  train one batch per epoch (the RSNA 1% trap of FORMATS.md), and an empty epoch is refused.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from sklearn.metrics import roc_auc_score
from torch.nn import functional as F
from torchvision.transforms import InterpolationMode
from torchvision.transforms.v2 import functional as TF
from tqdm import tqdm

from ..data.clahe import CLAHEConfig, random_clahe
from ..data.normalize import Normalization, normalization as make_normalization
from ..models.probe import LinearProbe, build_encoder
from ..runinfo import now, write_run_info
from ..runtime import describe_device, seed_everything
from ..rng import item_generator, uniform as _uniform
from ..settings import ProbeSettings, to_params
from .loop import Trainer, epoch_batches, file_stamp, plot_loss_curve, reset_stale_checkpoint, runtime_record

log = logging.getLogger(__name__)


def crop_box(height: int, width: int, scale, g: torch.Generator, ratio=(3 / 4, 4 / 3)) -> tuple[int, int, int, int]:
    """(top, left, h, w) of a random crop covering ``scale`` of the area; whole image after 10 misses."""
    area = height * width
    for _ in range(10):
        target = area * _uniform(g, scale[0], scale[1])
        aspect = math.exp(_uniform(g, math.log(ratio[0]), math.log(ratio[1])))
        w = round(math.sqrt(target * aspect))
        h = round(math.sqrt(target / aspect))
        if 0 < w <= width and 0 < h <= height:
            top = int(torch.randint(height - h + 1, (), generator=g))
            left = int(torch.randint(width - w + 1, (), generator=g))
            return top, left, h, w
    return 0, 0, height, width


def train_view(image: np.ndarray, size: int, crop_scale, jitter: dict, g: torch.Generator,
               clahe: CLAHEConfig = CLAHEConfig()) -> torch.Tensor:
    """uint8 (S, S) -> augmented float (1, size, size) in [0, 1]: crop, CLAHE, jitter."""
    x = torch.from_numpy(np.array(image, dtype=np.float32)).div_(255.0)[None]  # (1, S, S)
    top, left, h, w = crop_box(x.shape[-2], x.shape[-1], crop_scale, g)
    x = TF.resized_crop(x, top, left, h, w, [size, size], interpolation=InterpolationMode.BILINEAR,
                        antialias=True)
    x = random_clahe(x, clahe, g)
    b, c = float(jitter.get("brightness", 0.0)), float(jitter.get("contrast", 0.0))
    x = x * _uniform(g, max(0.0, 1 - b), 1 + b)
    mean = x.mean()
    x = (x - mean) * _uniform(g, max(0.0, 1 - c), 1 + c) + mean
    # Saturation and hue jitter (PROTOCOL.md lists 20% / 10%) are no-ops on a greyscale
    # image: it has no chroma to scale or rotate, so they are deliberately not applied.
    return x.clamp_(0.0, 1.0)


def eval_view(image: np.ndarray, size: int) -> torch.Tensor:
    """uint8 (S, S) -> float (1, size, size): Resize (shorter side) + CenterCrop."""
    x = torch.from_numpy(np.array(image, dtype=np.float32)).div_(255.0)[None]  # (1, S, S)
    x = TF.resize(x, [size], interpolation=InterpolationMode.BILINEAR, antialias=True)
    return TF.center_crop(x, [size, size])


class RSNAViews(torch.utils.data.Dataset):
    def __init__(self, images: np.ndarray, rows: np.ndarray, labels: np.ndarray, *, size: int,
                 normalize: Normalization, train: bool, crop_scale=(0.8, 1.0), jitter: dict | None = None,
                 seed: int = 0, clahe: CLAHEConfig = CLAHEConfig()):
        self.images, self.rows, self.labels = images, rows, labels
        self.size, self.normalize, self.train = size, normalize, train
        self.crop_scale, self.jitter, self.seed, self.clahe = crop_scale, jitter or {}, seed, clahe
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, i: int):
        image = self.images[int(self.rows[i])]
        if self.train:
            x = train_view(image, self.size, self.crop_scale, self.jitter, item_generator(self.seed, self.epoch, i),
                           self.clahe)
        else:
            x = eval_view(image, self.size)
        return self.normalize(x), torch.tensor(float(self.labels[i]))


def split_frame(index: pd.DataFrame, index_path: str) -> dict[str, pd.DataFrame]:
    need = {"patientId", "row", "label", "split", "in_train_subset"}
    missing = need - set(index.columns)
    if missing:
        raise ValueError(f"{index_path}: missing column(s) {sorted(missing)}")
    parts = {
        "train": index[(index["split"] == "train") & index["in_train_subset"].astype(bool)],
        "valid": index[index["split"] == "valid"],
        "test": index[index["split"] == "test"],
    }
    for name, part in parts.items():
        if part.empty:
            raise ValueError(f"{index_path}: the RSNA {name} split is empty")
    return {k: v.reset_index(drop=True) for k, v in parts.items()}


def head_optimizer(head: torch.nn.Module, settings: ProbeSettings, steps_per_epoch: int):
    """AdamW on the head and its per-batch lr schedule (None for ``constant``)."""
    from .clip import cosine_with_warmup  # the same warm-up + cosine curve as R-CLIP pretraining

    optimizer = torch.optim.AdamW(head.parameters(), lr=settings.lr, weight_decay=settings.weight_decay)
    if settings.schedule == "constant":
        return optimizer, None
    if settings.schedule != "cosine":
        raise ValueError(f"probe.schedule {settings.schedule!r}: expected constant or cosine")
    total = settings.epochs * steps_per_epoch
    warmup = round(settings.warmup_epochs * steps_per_epoch)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: cosine_with_warmup(step, warmup_steps=warmup, total_steps=total))
    return optimizer, scheduler


def auc_or_nan(labels: np.ndarray, probs: np.ndarray) -> float:
    return float(roc_auc_score(labels, probs)) if len(np.unique(labels)) == 2 else float("nan")


class ProbeTrainer(Trainer):
    """The head on frozen features: training views' features are recomputed every epoch (they
    are augmented), the validation and test features once."""

    def __init__(self, probe: LinearProbe, images: np.ndarray, parts: dict[str, pd.DataFrame], settings: ProbeSettings,
                 *, device: torch.device, seed: int, num_workers: int = 0, progress: bool = True):
        self.model, self.images, self.parts, self.settings = probe, images, parts, settings
        self.device, self.seed, self.num_workers, self.progress = device, seed, num_workers, progress
        self.epochs = settings.epochs
        steps_per_epoch = len(epoch_batches(len(parts["train"]), settings.batch_size, seed=seed, epoch=0))
        self.optimizer, self.scheduler = head_optimizer(probe.head, settings, steps_per_epoch)
        self.norm = make_normalization(settings.normalization, settings.normalize)
        self.clahe = CLAHEConfig.from_config(settings.clahe)
        self.use_amp = settings.amp == "bf16" and device.type == "cuda"
        probe.eval()
        # each DataLoader draws its base seed from the global RNG: this order is part of the run
        self.cached = {name: self.eval_features(parts[name]) for name in ("valid", "test")}  # (N, F), once
        if settings.standardize:
            probe.set_feature_statistics(self.eval_features(parts["train"]))
        self.valid_labels = torch.tensor(parts["valid"]["label"].to_numpy(), dtype=torch.float32, device=device)
        self.train_set = self.views(parts["train"], train=True)
        self.val_aucs: dict[int, float] = {}

    def views(self, part: pd.DataFrame, train: bool) -> RSNAViews:
        s = self.settings
        return RSNAViews(self.images, part["row"].to_numpy(), part["label"].to_numpy(), size=s.image_size,
                         normalize=self.norm, train=train, crop_scale=s.crop_scale, jitter=s.color_jitter,
                         seed=self.seed, clahe=self.clahe)

    def _loader(self, dataset, batches):
        return torch.utils.data.DataLoader(dataset, batch_sampler=batches, num_workers=self.num_workers,
                                           pin_memory=self.device.type == "cuda")

    def features(self, images: torch.Tensor) -> torch.Tensor:
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.use_amp):
            return self.model.features(images.to(self.device, non_blocking=True))  # (B, F)

    def eval_features(self, part: pd.DataFrame) -> torch.Tensor:
        dataset = self.views(part, train=False)
        batches = epoch_batches(len(dataset), max(self.settings.batch_size, 64), seed=self.seed, epoch=0, shuffle=False)
        return torch.cat([self.features(x) for x, _ in self._loader(dataset, batches)])  # (N, F)

    def step(self, batch) -> dict[str, torch.Tensor]:
        x, y = batch  # (B, C, S, S), (B,)
        logits = self.model.classify(self.features(x))  # (B,)
        loss = F.binary_cross_entropy_with_logits(logits, y.to(self.device))
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        if self.scheduler is not None:
            self.scheduler.step()
        return {"loss": loss.detach()}

    def train_epoch(self, epoch: int, on_step=None) -> dict[str, float]:
        self.train_set.set_epoch(epoch)
        batches = epoch_batches(len(self.train_set), self.settings.batch_size, seed=self.seed, epoch=epoch)
        total, count = 0.0, 0
        for x, y in tqdm(self._loader(self.train_set, batches), total=len(batches), desc=f"probe epoch {epoch}",
                         disable=not self.progress, mininterval=5):
            total += float(self.step((x, y))["loss"]) * len(y)
            count += len(y)
            if on_step is not None:
                on_step()
        self.val_aucs[epoch] = self.val_auc()
        log.info("epoch %d: val AUC %.4f", epoch, self.val_aucs[epoch])
        return {"loss": total / count}

    def val_auc(self) -> float:
        with torch.no_grad():
            probs = torch.sigmoid(self.model.classify(self.cached["valid"])).cpu().numpy()
        return auc_or_nan(self.parts["valid"]["label"].to_numpy(), probs)

    def validate(self) -> float:
        logits = self.model.classify(self.cached["valid"])
        return float(F.binary_cross_entropy_with_logits(logits, self.valid_labels))

    @torch.no_grad()
    def test_probabilities(self) -> np.ndarray:
        self.model.eval()
        return torch.sigmoid(self.model.classify(self.cached["test"])).cpu().numpy()


def train_probe(settings: ProbeSettings, inputs, outputs, *, encoder: str, device: torch.device, seed: int,
                checkpoint_dir, num_workers: int = 0, progress: bool = True) -> dict:
    """Rule train_probe: the probe of ``encoder`` (the wildcard) on ``inputs`` cache_images, cache_index
    (+ clip, the CLIP folder of rclip_/convirt_ encoders; + image_weights for imagenet_init); the folder
    of ``outputs["predictions"]`` gets the model folder, metrics, test predictions and run.json."""
    started = now()
    out_dir = Path(outputs["predictions"]).parent
    seed_everything(seed)
    cache_images, cache_index = inputs["cache_images"], inputs["cache_index"]
    clip_folder, image_weights = inputs.get("clip"), inputs.get("image_weights")
    index = pd.read_parquet(cache_index)
    images = np.load(cache_images, mmap_mode="r")  # (N, S, S) uint8
    if images.ndim != 3 or len(images) != len(index):
        raise ValueError(f"{cache_images}: expected (N, S, S) with N = {len(index)} rows of {cache_index}, "
                         f"got shape {images.shape}")
    parts = split_frame(index, str(cache_index))
    log.info("RSNA probe (%s): %d train (%d positive), %d valid, %d test images", encoder,
             len(parts["train"]), int(parts["train"]["label"].sum()), len(parts["valid"]), len(parts["test"]))
    stamp_inputs = [cache_images, cache_index] + ([Path(clip_folder) / "model.safetensors"] if clip_folder else [])
    reset_stale_checkpoint(checkpoint_dir, {"settings": to_params(settings), "seed": seed, "encoder": encoder,
                                            "inputs": file_stamp(*stamp_inputs)})
    probe = LinearProbe(build_encoder(encoder, arch=settings.arch, seed=seed, clip_folder=clip_folder,
                                      image_weights=image_weights)).to(device)
    torch.manual_seed(seed)
    torch.nn.init.zeros_(probe.head.bias)
    trainer = ProbeTrainer(probe, images, parts, settings, device=device, seed=seed, num_workers=num_workers,
                           progress=progress)
    metrics_path = out_dir / "metrics.tsv"
    history = trainer.fit(checkpoint_dir, metrics_path)
    test_prob = trainer.test_probabilities()
    results = {
        "best_epoch": history.best_epoch, "best_val_loss": history.best_val,
        "val_auc": trainer.val_auc(),
        "test_auc": auc_or_nan(parts["test"]["label"].to_numpy(), test_prob),
        "test_accuracy": float(((test_prob >= 0.5) == parts["test"]["label"].to_numpy().astype(bool)).mean()),
    }
    predictions = pd.DataFrame({"patientId": parts["test"]["patientId"].astype(str),
                                "label": parts["test"]["label"].astype("int64"),
                                "prob": test_prob.astype("float64")})
    out_dir.mkdir(parents=True, exist_ok=True)
    predictions.to_parquet(out_dir / "predictions_test.parquet", index=False)
    probe.to("cpu")
    probe.save_pretrained(out_dir, {"encoder": encoder, "image_size": settings.image_size,
                                    "normalize": trainer.norm.record(), **results,
                                    "image_cache": {"size": int(images.shape[1])}})  # for `crrg-clip classify`
    plot_loss_curve(metrics_path, out_dir / "loss_curve.png", f"RSNA probe ({encoder}), seed {seed}")
    write_run_info(out_dir / "run.json", started=started, device=describe_device(device), seed=seed,
                   settings=to_params(settings), extra={
                       "runtime": runtime_record(device, num_workers),
                       "encoder": encoder, "clip_folder": str(clip_folder) if clip_folder else None,
                       "image_weights": image_weights, "n_train": len(parts["train"]),
                       "n_valid": len(parts["valid"]), "n_test": len(parts["test"]), **results})
    log.info("probe %s: %s", encoder, results)
    return results
