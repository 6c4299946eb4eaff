"""Train the report-level baselines (S&T, AdaAtt) and write their test reports.

Data: the images of one subsample (by default RRG-opt's) that have FINDINGS, read from the
letterboxed MIMIC cache, resized to ``image_size``, augmented in training with the
detector's MIMIC augmentation (``rrg.augment``, per item seeded by (seed, epoch, item)) and
normalised with ``rrg.normalize``. Targets: the FINDINGS in the word vocabulary of the
training reports (``models.report_vocab``).

With ``freeze_encoder`` the ResNet instead runs once per unaugmented image and the LSTM trains on
its per-channel standardised features (statistics from the training images, kept in the model).

Training: teacher forcing with token-level cross-entropy (``LanguageModelLoss``), Adam,
gradient clipping by value (self-critical.pytorch's ``grad_clip_mode: value``), the best
epoch by validation loss, resumable through ``train.loop.fit``. Generation: beam search.

Letters: B batch, S cache side, T tokens, V vocabulary.
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass
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
from .. import modelio
from ..rng import item_generator
from ..runinfo import now, write_run_info
from ..runtime import describe_device, seed_everything
from ..settings import ReportBaselineSettings, to_params
from .loop import Trainer, epoch_batches, file_stamp, plot_loss_curve, reset_stale_checkpoint, runtime_record

log = logging.getLogger(__name__)

MODELS = {"show_tell": (ShowTell, ShowTellConfig), "adaatt": (AdaAtt, AdaAttConfig)}


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
               image_size: int, normalize: dict, augment: dict | None, seed: int) -> ReportSplit:
    """A subsample split's images with FINDINGS (sorted by dicom_id), as in the evaluation;
    ``augment`` (AugmentConfig fields) for the training split, None for the others."""
    frame = split_findings(images_table, splits, split)
    if frame.empty:
        raise ValueError(f"split {split!r}: no image with FINDINGS")
    ids, rows = cache_rows(index_path, frame["dicom_id"].tolist(), what=f"baseline {split}")
    text = dict(zip(frame["dicom_id"], frame["findings"].astype(str)))
    augment_cfg = AugmentConfig(**augment) if augment is not None else None
    images = ReportImages(cache, rows, size=image_size, normalize=Normalize(**normalize),
                          augment_cfg=augment_cfg, seed=seed)
    return ReportSplit(ids, [text[d] for d in ids], images)


def build_model(settings: ReportBaselineSettings, vocab_size: int, pad_id: int):
    if settings.model not in MODELS:
        raise ValueError(f"baseline model {settings.model!r}: expected one of {sorted(MODELS)}")
    model_cls, config_cls = MODELS[settings.model]
    values = {"vocab_size": vocab_size, "pad_id": pad_id, **asdict(settings)}
    config = config_cls(**{k: v for k, v in values.items() if k in config_cls.__dataclass_fields__})
    return model_cls(config, backbone_weights=settings.backbone_weights)


def load_baseline(folder: Path | str, device: torch.device | str = "cpu"):
    """A trained baseline folder -> its model (eval mode, ``vocab`` and ``folder_config`` attached)."""
    kind = modelio.read_config(folder, tuple(MODELS))["kind"]
    return MODELS[kind][0].from_pretrained(folder, device)


@torch.no_grad()
def encode_all(model, images: ReportImages, n: int, device: torch.device, batch_size: int = 32) -> torch.Tensor:
    """The encoder (eval mode) over every unaugmented image of a split: (N, R, C) on the CPU."""
    was_training = model.encoder.training
    model.encoder.eval()
    parts = [model.encoder(images.batch(list(range(start, min(start + batch_size, n)))).to(device)).cpu()
             for start in range(0, n, batch_size)]
    model.encoder.train(was_training)
    return torch.cat(parts)


class ReportBaselineTrainer(Trainer):
    """Teacher forcing + token cross-entropy, Adam, gradient clipping by value; the best epoch by
    validation loss (per target token)."""

    def __init__(self, model, vocab: WordVocab, train: ReportSplit, valid: ReportSplit,
                 settings: ReportBaselineSettings, *, device: torch.device, seed: int):
        self.model, self.vocab, self.train, self.valid, self.settings = model.to(device), vocab, train, valid, settings
        self.device, self.seed, self.epochs = device, seed, settings.epochs
        # A frozen encoder runs once per image, unaugmented (self-critical.pytorch's prepro_feats.py)
        self.features = None
        if settings.freeze_encoder:
            model.encoder.requires_grad_(False)
            raw_train = encode_all(model, train.images, len(train.dicom_ids), device)  # (N, R, C)
            self.features = {"train": model.encoder.set_standardization(raw_train.to(device)).cpu(),
                             "valid": encode_all(model, valid.images, len(valid.dicom_ids), device)}
        trainable = [p for p in model.parameters() if p.requires_grad]
        self.optimizer = torch.optim.Adam(trainable, lr=settings.lr, weight_decay=settings.weight_decay)
        self.loss_fn = LanguageModelLoss()
        self.targets = {"train": vocab.targets(train.reports, settings.max_length),
                        "valid": vocab.targets(valid.reports, settings.max_length)}

    def _batch(self, split: str, indices: list[int], epoch: int) -> tuple[torch.Tensor, ...]:
        """(images (B, 1, size, size) or frozen features (B, R, C), input_ids (B, T), labels (B, T))."""
        if self.features is not None:
            visual = self.features[split][indices].to(self.device)
        else:
            data = self.train if split == "train" else self.valid
            visual = data.images.batch(indices, epoch).to(self.device)
        batch = collate_targets([self.targets[split][i] for i in indices], self.vocab.pad_id)
        return visual, batch["input_ids"].to(self.device), batch["labels"].to(self.device)

    def _loss(self, batch) -> tuple[torch.Tensor, int]:
        visual, input_ids, labels = batch
        if self.features is not None:
            logits = self.model.forward_features(visual, input_ids)  # (B, T, V)
        else:
            logits = self.model(visual, input_ids)
        return self.loss_fn(logits, labels)["lm"], int((labels[:, 1:] != IGNORE_INDEX).sum())

    def step(self, batch) -> dict[str, torch.Tensor]:
        loss, _ = self._loss(batch)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if self.settings.grad_clip > 0:
            torch.nn.utils.clip_grad_value_(self.model.parameters(), self.settings.grad_clip)
        self.optimizer.step()
        return {"loss": loss.detach()}

    def train_epoch(self, epoch: int, on_step=None) -> dict[str, float]:
        total, count = 0.0, 0
        for indices in epoch_batches(len(self.train.dicom_ids), self.settings.batch_size, seed=self.seed, epoch=epoch):
            total += float(self.step(self._batch("train", indices, epoch))["loss"]) * len(indices)
            count += len(indices)
            if on_step is not None:
                on_step()
        return {"loss": total / count}

    def validate(self) -> float:
        total, tokens = 0.0, 0
        for indices in epoch_batches(len(self.valid.dicom_ids), self.settings.batch_size, seed=self.seed, epoch=0,
                                     shuffle=False):
            loss, n = self._loss(self._batch("valid", indices, 0))
            total += float(loss) * n
            tokens += n
        return total / max(tokens, 1)


def train_report_baseline(settings: ReportBaselineSettings, inputs, outputs, *, device: torch.device, seed: int,
                          checkpoint_dir, num_workers: int = 0, progress: bool = True) -> dict:
    """Rule train_report_baseline: ``inputs`` images, split, cache_images, cache_index; ``outputs["model"]``
    gets config.json, model.safetensors, vocab.json, metrics, loss curve and run.json.
    ``num_workers`` and ``progress`` are unused (the batches are built in this process, unlogged)."""
    started = now()
    seed_everything(seed)
    out_dir = Path(outputs["model"])
    paths = [inputs["images"], inputs["split"], inputs["cache_images"], inputs["cache_index"]]
    images_table, splits = pd.read_parquet(paths[0]), pd.read_parquet(paths[1])
    common = dict(images_table=images_table, splits=splits, cache=open_image_cache(paths[2]), index_path=paths[3],
                  image_size=settings.image_size, normalize=settings.normalize, seed=seed)
    train = load_split(split="train", augment=settings.augment, **common)
    valid = load_split(split="valid", augment=None, **common)
    vocab = WordVocab.build(train.reports, settings.vocab_min_count)
    log.info("%s: %d training, %d validation reports; vocabulary %d words (min count %d)", settings.model,
             len(train.dicom_ids), len(valid.dicom_ids), len(vocab), settings.vocab_min_count)
    reset_stale_checkpoint(checkpoint_dir, {"settings": to_params(settings), "seed": seed,
                                            "inputs": file_stamp(*paths)})
    model = build_model(settings, len(vocab), vocab.pad_id)
    model.vocab = vocab
    trainer = ReportBaselineTrainer(model, vocab, train, valid, settings, device=device, seed=seed)
    t0 = time.perf_counter()
    history = trainer.fit(checkpoint_dir, out_dir / "metrics.tsv")
    seconds = time.perf_counter() - t0
    model.eval()
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
                   settings=to_params(settings), extra={"runtime": runtime_record(device, num_workers),
                                                        "summary": summary, "split": str(paths[1])})
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


def generate_baseline_reports(settings: ReportBaselineSettings, inputs, outputs, *, device: torch.device,
                              batch_size: int) -> pd.DataFrame:
    """Rule generate_report_baseline: ``dicom_id, report, reference`` for every test image with
    FINDINGS (the evaluation's test set), by beam search with ``settings.beam_size``.
    The image size and normalisation are the model folder's (what it was trained with)."""
    model_dir, reports_out = inputs["model"], outputs["reports"]
    images_path, split_path = inputs["images"], inputs["split"]
    cache_images, cache_index = inputs["cache_images"], inputs["cache_index"]
    model = load_baseline(model_dir, device)
    config = model.folder_config  # the image size and normalisation it was trained with
    data = load_split(images_table=pd.read_parquet(images_path), splits=pd.read_parquet(split_path),
                      cache=open_image_cache(cache_images), index_path=cache_index, split="test",
                      image_size=config["image_size"], normalize=config["normalize"], augment=None, seed=0)
    reports = generate_reports(model, data, beam_size=settings.beam_size, max_length=settings.max_length,
                               batch_size=batch_size, device=device)
    frame = pd.DataFrame({"dicom_id": data.dicom_ids, "report": reports, "reference": data.reports})
    Path(reports_out).parent.mkdir(parents=True, exist_ok=True)
    frame.to_parquet(reports_out, index=False)
    log.info("%s: %d test reports, %d distinct", config["kind"], len(frame), frame["report"].nunique())
    return frame
