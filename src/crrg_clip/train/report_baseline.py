"""Train the report-level baselines (S&T, AdaAtt) and write their test reports.

Data: the images of one subsample (by default RRG-opt's) that have FINDINGS, read from the
letterboxed MIMIC cache, resized to ``image_size``, augmented in training with the
detector's MIMIC augmentation (``rrg.augment``, per item seeded by (seed, epoch, item)) and
normalised with ``rrg.normalize``. Targets: the FINDINGS in the word vocabulary of the
training reports (``models.report_vocab``).

Training: teacher forcing with token-level cross-entropy (``LanguageModelLoss``), Adam,
gradient clipping by value (self-critical.pytorch's ``grad_clip_mode: value``), the best
epoch by validation loss, resumable through ``train.loop.fit``. Generation: beam search.

Letters: B batch, S cache side, T tokens, V vocabulary.
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch.nn import functional as F

from ..data.region_dataset import AugmentConfig, Normalize, augment, cache_rows, open_image_cache
from ..evaluate.rrg import split_findings
from ..models.adaatt import AdaAtt, AdaAttConfig
from ..models.beam_search import decode
from ..models.generator import IGNORE_INDEX, LanguageModelLoss, collate_targets
from ..models.report_vocab import WordVocab
from ..models.show_tell import ShowTell, ShowTellConfig
from ..modelio import read_model_config
from ..rng import item_generator
from ..runinfo import now, write_run_info
from ..runtime import describe_device, seed_everything
from .loop import epoch_batches, file_stamp, fit, plot_loss_curve, reset_stale_checkpoint

log = logging.getLogger(__name__)

MODELS = {"show_tell": (ShowTell, ShowTellConfig), "adaatt": (AdaAtt, AdaAttConfig)}


@dataclass
class BaselineSettings:
    """One ``baselines.<model>`` config section (+ the shared rrg image settings)."""

    model: str = "show_tell"
    backbone: str = "resnet50"
    backbone_weights: str | None = None
    image_size: int = 224
    grid: int = 7
    embed_dim: int = 512
    hidden_dim: int = 512
    attention_dim: int = 512
    dropout: float = 0.5
    vocab_min_count: int = 10
    max_length: int = 100
    epochs: int = 30
    batch_size: int = 16
    lr: float = 4e-4
    weight_decay: float = 0.0
    grad_clip: float = 0.1
    beam_size: int = 3
    normalize: dict = field(default_factory=lambda: {"mean": 0.471, "std": 0.302})
    augment: dict = field(default_factory=dict)

    @classmethod
    def from_config(cls, values: dict, **overrides) -> "BaselineSettings":
        merged = {**values, **overrides}
        return cls(**{k: v for k, v in merged.items() if k in cls.__dataclass_fields__})


class ReportImages:
    """Cache rows of one split -> (B, 1, size, size) normalised images; augmented when training.

    Each row is resized to ``size`` once and kept (float32, 1 x size x size): the resize is the
    same every epoch, only the augmentation changes (at paper size, 224 px: ~200 KiB an image).
    """

    def __init__(self, images: np.ndarray, rows: np.ndarray, *, size: int, normalize: Normalize,
                 augment_cfg: AugmentConfig | None, seed: int):
        self.images, self.rows, self.size = images, rows, size
        self.normalize, self.augment_cfg, self.seed = normalize, augment_cfg, seed
        self._resized: dict[int, torch.Tensor] = {}

    def resized(self, i: int) -> torch.Tensor:
        """(1, size, size) in [0, 1], computed on first use."""
        if i not in self._resized:
            image = torch.from_numpy(np.array(self.images[self.rows[i]], dtype=np.float32) / 255.0)[None]  # (1, S, S)
            if image.shape[-1] != self.size:
                image = F.interpolate(image[None], size=(self.size, self.size), mode="bilinear",
                                      antialias=True, align_corners=False)[0]
            self._resized[i] = image
        return self._resized[i]

    def batch(self, indices: list[int], epoch: int = 0) -> torch.Tensor:
        out = []
        no_boxes = torch.zeros((0, 4))
        for i in indices:
            image = self.resized(int(i)).clone()  # the augmentation must not touch the kept copy
            if self.augment_cfg is not None:
                image, _ = augment(image, no_boxes, self.augment_cfg, item_generator(self.seed, epoch, int(i)))
            out.append((image - self.normalize.mean) / self.normalize.std)
        return torch.stack(out)  # (B, 1, size, size)


@dataclass
class ReportSplit:
    dicom_ids: list[str]
    reports: list[str]
    images: ReportImages


def load_split(*, images_table: pd.DataFrame, splits: pd.DataFrame, cache, index_path, split: str,
               settings: BaselineSettings, seed: int, train: bool) -> ReportSplit:
    """A subsample split's images with FINDINGS (sorted by dicom_id), as in the evaluation."""
    frame = split_findings(images_table, splits, split)
    if frame.empty:
        raise ValueError(f"split {split!r}: no image with FINDINGS")
    ids, rows = cache_rows(index_path, frame["dicom_id"].tolist(), what=f"baseline {split}")
    text = dict(zip(frame["dicom_id"], frame["findings"].astype(str)))
    augment_cfg = AugmentConfig(**settings.augment) if train else None
    images = ReportImages(cache, rows, size=settings.image_size, normalize=Normalize(**settings.normalize),
                          augment_cfg=augment_cfg, seed=seed)
    return ReportSplit(ids, [text[d] for d in ids], images)


def build_model(settings: BaselineSettings, vocab_size: int, pad_id: int):
    if settings.model not in MODELS:
        raise ValueError(f"baseline model {settings.model!r}: expected one of {sorted(MODELS)}")
    model_cls, config_cls = MODELS[settings.model]
    values = {"vocab_size": vocab_size, "pad_id": pad_id, **asdict(settings)}
    config = config_cls(**{k: v for k, v in values.items() if k in config_cls.__dataclass_fields__})
    return model_cls(config, backbone_weights=settings.backbone_weights)


def load_baseline(folder: Path | str, device: torch.device | str = "cpu"):
    """A trained baseline folder -> its model (eval mode, ``vocab`` attached)."""
    kind = read_model_config(folder).get("kind")
    if kind not in MODELS:
        raise ValueError(f"{folder}: not a report-baseline folder (kind={kind!r})")
    return MODELS[kind][0].from_pretrained(folder, device)


def _batch_loss(model, data: ReportSplit, targets: list[list[int]], indices: list[int], epoch: int,
                pad_id: int, device: torch.device, loss_fn) -> tuple[torch.Tensor, int]:
    images = data.images.batch(indices, epoch).to(device)  # (B, 1, size, size)
    batch = collate_targets([targets[i] for i in indices], pad_id)
    logits = model(images, batch["input_ids"].to(device))  # (B, T, V)
    labels = batch["labels"].to(device)  # (B, T)
    return loss_fn(logits, labels)["lm"], int((labels[:, 1:] != IGNORE_INDEX).sum())


def fit_baseline(model, vocab: WordVocab, train: ReportSplit, valid: ReportSplit, settings: BaselineSettings, *,
                 seed: int, device: torch.device, checkpoint_dir, metrics_path):
    """Teacher forcing + cross-entropy, Adam, gradient clipping; the best epoch's weights on return."""
    model.to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=settings.lr, weight_decay=settings.weight_decay)
    loss_fn = LanguageModelLoss()
    train_targets = vocab.targets(train.reports, settings.max_length)
    valid_targets = vocab.targets(valid.reports, settings.max_length)

    def train_epoch(epoch: int) -> dict[str, float]:
        total, count = 0.0, 0
        for indices in epoch_batches(len(train.dicom_ids), settings.batch_size, seed=seed, epoch=epoch):
            loss, _ = _batch_loss(model, train, train_targets, indices, epoch, vocab.pad_id, device, loss_fn)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if settings.grad_clip > 0:
                torch.nn.utils.clip_grad_value_(model.parameters(), settings.grad_clip)
            optimizer.step()
            total += float(loss.detach()) * len(indices)
            count += len(indices)
        return {"loss": total / count}

    def validate() -> float:
        total, tokens = 0.0, 0
        for indices in epoch_batches(len(valid.dicom_ids), settings.batch_size, seed=seed, epoch=0, shuffle=False):
            loss, n = _batch_loss(model, valid, valid_targets, indices, 0, vocab.pad_id, device, loss_fn)
            total += float(loss) * n
            tokens += n
        return total / max(tokens, 1)

    history = fit(model, optimizer, train_epoch=train_epoch, validate=validate, epochs=settings.epochs,
                  checkpoint_dir=checkpoint_dir, metrics_path=metrics_path)
    model.eval()
    return history


def train_report_baseline(*, images_path, split_path, cache_images, cache_index, out_dir, checkpoint_dir,
                          settings: BaselineSettings, seed: int, device: torch.device) -> dict:
    """Paths in, a model folder out (config.json, model.safetensors, vocab.json, metrics, curve, run.json)."""
    started = now()
    seed_everything(seed)
    out_dir = Path(out_dir)
    images_table, splits = pd.read_parquet(images_path), pd.read_parquet(split_path)
    cache = open_image_cache(cache_images)
    common = dict(images_table=images_table, splits=splits, cache=cache, index_path=cache_index,
                  settings=settings, seed=seed)
    train = load_split(split="train", train=True, **common)
    valid = load_split(split="valid", train=False, **common)
    vocab = WordVocab.build(train.reports, settings.vocab_min_count)
    log.info("%s: %d training, %d validation reports; vocabulary %d words (min count %d)", settings.model,
             len(train.dicom_ids), len(valid.dicom_ids), len(vocab), settings.vocab_min_count)
    reset_stale_checkpoint(checkpoint_dir, {"settings": asdict(settings), "seed": seed,
                                            "inputs": file_stamp(images_path, split_path, cache_images, cache_index)})
    model = build_model(settings, len(vocab), vocab.pad_id)
    model.vocab = vocab
    t0 = time.perf_counter()
    history = fit_baseline(model, vocab, train, valid, settings, seed=seed, device=device,
                           checkpoint_dir=checkpoint_dir, metrics_path=out_dir / "metrics.tsv")
    seconds = time.perf_counter() - t0
    model.to("cpu").save_pretrained(out_dir, extra={
        "image_size": settings.image_size, "normalize": settings.normalize, "max_length": settings.max_length,
        "beam_size": settings.beam_size, "best_epoch": history.best_epoch, "best_val_loss": history.best_val})
    plot_loss_curve(out_dir / "metrics.tsv", out_dir / "loss_curve.png", f"{settings.model}, seed {seed}")
    rows = history.rows
    summary = {"best_epoch": history.best_epoch, "best_val_loss": history.best_val, "train_seconds": seconds,
               "first_train_loss": rows[0]["train_loss"] if rows else None,
               "last_train_loss": rows[-1]["train_loss"] if rows else None,
               "n_train": len(train.dicom_ids), "n_valid": len(valid.dicom_ids), "vocab_size": len(vocab)}
    write_run_info(out_dir / "run.json", started=started, device=describe_device(device), seed=seed,
                   settings=asdict(settings), extra={"summary": summary, "split": str(split_path)})
    return summary


@torch.no_grad()
def generate_reports(model, data: ReportSplit, *, beam_size: int, max_length: int, batch_size: int,
                     device: torch.device) -> list[str]:
    model.to(device).eval()
    vocab = model.vocab
    reports = []
    for indices in epoch_batches(len(data.dicom_ids), batch_size, seed=0, epoch=0, shuffle=False):
        ids = decode(model, data.images.batch(indices).to(device), beam_size=beam_size, max_length=max_length,
                     bos_id=vocab.eos_id, eos_id=vocab.eos_id)
        reports += [vocab.decode(row) for row in ids]
    return reports


def run_generate_report_baseline(*, model_dir, images_path, split_path, cache_images, cache_index, reports_out,
                                 device: torch.device, beam_size: int | None = None, max_length: int | None = None,
                                 batch_size: int = 32) -> pd.DataFrame:
    """``dicom_id, report, reference`` for every test image with FINDINGS (the evaluation's test set)."""
    model = load_baseline(model_dir, device)
    config = read_model_config(model_dir)
    settings = BaselineSettings.from_config(config, model=config["kind"])
    data = load_split(images_table=pd.read_parquet(images_path), splits=pd.read_parquet(split_path),
                      cache=open_image_cache(cache_images), index_path=cache_index, split="test",
                      settings=settings, seed=0, train=False)
    reports = generate_reports(model, data, beam_size=beam_size or settings.beam_size,
                               max_length=max_length or settings.max_length, batch_size=batch_size, device=device)
    frame = pd.DataFrame({"dicom_id": data.dicom_ids, "report": reports, "reference": data.reports})
    Path(reports_out).parent.mkdir(parents=True, exist_ok=True)
    frame.to_parquet(reports_out, index=False)
    log.info("%s: %d test reports, %d distinct", config["kind"], len(frame), frame["report"].nunique())
    return frame
