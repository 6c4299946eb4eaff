"""Train the RRG region selector (stage 2) on extracted region features.

Inputs are the detector's features for the subsample's train and valid splits plus the region
labels (``has_sentence``, ``is_abnormal``) from the cache's region table. The input
standardisation is fitted on the training split's detected regions before the first step.
Loss = 5 x select + 5 x abnormal over detected regions; AdamW + ReduceLROnPlateau; best by
validation loss.
"""

from __future__ import annotations

import hashlib
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
from tqdm import tqdm

from crrg_clip.data.region_dataset import read_region_targets, sentence_label_notes
from crrg_clip.models.selector import RegionSelector, SelectorConfig, total_loss
from crrg_clip.region_features import load_region_features
from crrg_clip.runinfo import now, write_run_info
from crrg_clip.runtime import describe_device, seed_everything
from crrg_clip.settings import SelectorSettings, to_params
from crrg_clip.train.loop import (Schedule, Trainer, epoch_batches, make_optimizer, plot_loss_curve,
                                  reset_stale_checkpoint, runtime_record, tensor_stamp)

log = logging.getLogger(__name__)


@dataclass
class SelectorData:
    """Region features and labels of one split (letters: N images, R regions, C channels)."""

    dicom_ids: list[str]
    features: torch.Tensor  # (N, R, C) float16
    detected: torch.Tensor  # (N, R) bool
    has_sentence: torch.Tensor  # (N, R) bool
    is_abnormal: torch.Tensor  # (N, R) bool
    left_out: dict = field(default_factory=dict)  # sentence_label_notes: counted, with ids, in run.json

    def __len__(self) -> int:
        return len(self.dicom_ids)

    def batch(self, indices: list[int], device) -> tuple[torch.Tensor, ...]:
        idx = torch.as_tensor(indices)
        return tuple(t[idx].to(device) for t in (self.features, self.has_sentence, self.is_abnormal, self.detected))


def selector_data_stamp(data: SelectorData) -> list:
    """Content fingerprint of a split: its ids and tensors."""
    return [hashlib.sha256("\n".join(data.dicom_ids).encode()).hexdigest(),
            tensor_stamp(data.features, data.detected, data.has_sentence, data.is_abnormal)]


def load_selector_data(features_path, regions_path, rows_path=None) -> SelectorData:
    tensors, frame = load_region_features(features_path, rows_path)
    ids = frame["dicom_id"].tolist()
    labels = read_region_targets(regions_path, ids)
    if not tensors["detected"].any():
        raise ValueError(f"{features_path}: the detector found no region in any image; nothing to train on")
    return SelectorData(ids, tensors["features"], tensors["detected"],
                        torch.from_numpy(labels.has_sentence), torch.from_numpy(labels.is_abnormal),
                        left_out=sentence_label_notes(regions_path, ids))


@torch.no_grad()
def f1_best_threshold(logits: torch.Tensor, targets: torch.Tensor) -> float:
    """The logit threshold (selected = logit > t) with the best F1 on ``targets``.

    ``logits``/``targets``: (N,) over the detected validation regions. Candidates lie midway
    between consecutive distinct logits, so the choice never sits on a validation score.
    """
    logits, targets = logits.float().flatten(), targets.bool().flatten()
    if len(logits) == 0 or not targets.any():
        raise ValueError("cannot tune the selection threshold: no validation region with a sentence")
    values = torch.unique(logits)  # sorted
    candidates = torch.cat([values[:1] - 1.0, (values[1:] + values[:-1]) / 2])
    best, best_f1 = float(candidates[0]), -1.0
    for t in candidates.tolist():
        selected = logits > t
        tp = int((selected & targets).sum())
        f1 = 2 * tp / (int(selected.sum()) + int(targets.sum()))
        if f1 > best_f1:
            best, best_f1 = t, f1
    return best


@torch.no_grad()
def selection_outputs(model: RegionSelector, data: SelectorData, device, batch_size: int = 256) -> dict:
    """One pass over ``data``: ``logits``, ``selected``, ``has_sentence``, ``detected``, each (N, R), on CPU."""
    model.eval()
    parts: dict[str, list] = {"logits": [], "selected": [], "has_sentence": [], "detected": []}
    for start in range(0, len(data), batch_size):
        feats, has_sentence, _, detected = data.batch(list(range(start, min(start + batch_size, len(data)))), device)
        logits, selected = model.select(feats, detected)
        for name, value in (("logits", logits), ("selected", selected), ("has_sentence", has_sentence.bool()),
                            ("detected", detected.bool())):
            parts[name].append(value.cpu())
    return {name: torch.cat(values) for name, values in parts.items()}


def tune_selection_threshold(model: RegionSelector, data: SelectorData, device) -> float:
    """Best-F1 threshold over the detected regions of ``data`` (the validation split)."""
    out = selection_outputs(model, data, device)
    return f1_best_threshold(out["logits"][out["detected"]], out["has_sentence"][out["detected"]])


def selection_metrics(model: RegionSelector, data: SelectorData, device) -> dict[str, float]:
    """Precision / recall / F1 of ``selected`` against ``has_sentence`` over all (image, region) pairs."""
    out = selection_outputs(model, data, device)
    selected, has_sentence = out["selected"], out["has_sentence"]
    tp = int((selected & has_sentence).sum())
    fp = int((selected & ~has_sentence).sum())
    fn = int((~selected & has_sentence).sum())
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": precision, "recall": recall, "f1": f1, "tp": tp, "fp": fp, "fn": fn}


class SelectorTrainer(Trainer):
    def __init__(self, model: RegionSelector, train: SelectorData, valid: SelectorData, schedule: Schedule, *,
                 device: torch.device, seed: int, progress: bool = True):
        self.model, self.train, self.valid, self.schedule = model.to(device), train, valid, schedule
        self.device, self.seed, self.progress = device, seed, progress
        self.optimizer, self.scheduler = make_optimizer(model, schedule)
        self.epochs, self.eval_every = schedule.epochs, schedule.eval_every

    def step(self, batch) -> dict[str, torch.Tensor]:
        """One optimiser step on ``(features, has_sentence, is_abnormal, detected)``; the weighted total as ``loss``."""
        losses = self.model(*batch)
        loss = total_loss(losses)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        return {"loss": loss.detach(), **{k: v.detach() for k, v in losses.items()}}

    def train_epoch(self, epoch: int, on_step=None) -> dict[str, float]:
        self.model.train()
        sums: dict[str, float] = {}
        batches = epoch_batches(len(self.train), self.schedule.batch_size, seed=self.seed, epoch=epoch)
        for batch in tqdm(batches, desc=f"selector epoch {epoch + 1}", disable=not self.progress):
            for k, v in self.step(self.train.batch(batch, self.device)).items():
                sums[k] = sums.get(k, 0.0) + v.item() * len(batch)
            if on_step is not None:  # fit's every-K-steps evaluation
                on_step()
        return {k: v / len(self.train) for k, v in sums.items()}

    @torch.no_grad()
    def validate(self) -> float:
        self.model.eval()
        total = 0.0
        for batch in epoch_batches(len(self.valid), self.schedule.batch_size, seed=0, epoch=0, shuffle=False):
            total += float(total_loss(self.model(*self.valid.batch(batch, self.device)))) * len(batch)
        return total / len(self.valid)


def train_selector(settings: SelectorSettings, inputs, outputs, *, device: torch.device, seed: int,
                   checkpoint_dir, num_workers: int = 0, progress: bool = True) -> dict:
    """Rule train_selector: ``inputs`` train, valid (region features), train_rows, valid_rows, regions and
    detector (its config.json, recorded); the folder of ``outputs["config"]`` gets the model, metrics,
    loss curve and run.json. ``num_workers`` is unused: the features are in memory."""
    started = now()
    seed_everything(seed)
    out_dir = Path(outputs["config"]).parent
    train = load_selector_data(inputs["train"], inputs["regions"], inputs.get("train_rows"))
    valid = load_selector_data(inputs["valid"], inputs["regions"], inputs.get("valid_rows"))
    tune = settings.selection_threshold == "valid_f1"
    config = SelectorConfig(in_channels=int(train.features.shape[-1]), region_feature_dim=settings.region_feature_dim,
                            abnormal_classifier=settings.abnormal_classifier,
                            selection_pos_weight=settings.selection_pos_weight,
                            abnormal_pos_weight=settings.abnormal_pos_weight,
                            selection_threshold=-1.0 if tune else float(settings.selection_threshold))
    log.info("selector: %d training images (%.1f%% regions detected, %.1f%% with a sentence), %d validation",
             len(train), 100 * train.detected.float().mean(), 100 * train.has_sentence.float().mean(), len(valid))
    # content, not paths: a checkpoint of other features or targets is not resumed
    reset_stale_checkpoint(checkpoint_dir, {"settings": to_params(settings), "seed": seed,
                                            "inputs": [selector_data_stamp(d) for d in (train, valid)]})
    model = RegionSelector(config)
    model.fit_standardization(train.features, train.detected)
    trainer = SelectorTrainer(model, train, valid, settings.schedule, device=device, seed=seed, progress=progress)
    t0 = time.perf_counter()
    history = trainer.fit(checkpoint_dir, out_dir / "metrics.tsv")
    seconds = time.perf_counter() - t0
    if tune:  # chosen on the validation split, never on test; stored in the model's config.json
        model.config.selection_threshold = tune_selection_threshold(model, valid, device)
        log.info("selection threshold tuned on the validation split: %.4f", model.config.selection_threshold)
    metrics = selection_metrics(model, valid, device)
    log.info("selector validation (best epoch %d): precision %.3f recall %.3f F1 %.3f", history.best_epoch,
             metrics["precision"], metrics["recall"], metrics["f1"])
    detector_folder = str(Path(inputs["detector"]).parent) if inputs.get("detector") else None
    model.cpu().save_pretrained(out_dir, extra={"best_epoch": history.best_epoch, "best_val_loss": history.best_val,
                                                "detector": detector_folder})
    plot_loss_curve(out_dir / "metrics.tsv", out_dir / "loss_curve.png", "RRG region selection")
    summary = {"best_epoch": history.best_epoch, "best_val_loss": history.best_val, "train_seconds": seconds,
               "valid_selection": metrics, "selection_threshold": model.config.selection_threshold,
               "threshold_tuned_on_valid": tune, "n_train": len(train), "n_valid": len(valid),
               "left_out": {"train": train.left_out, "valid": valid.left_out}}
    write_run_info(out_dir / "run.json", started=started, device=describe_device(device), seed=seed,
                   settings=to_params(settings), extra={"runtime": runtime_record(device, num_workers),
                                                        "inputs": {k: str(inputs[k]) for k in ("train", "valid")},
                                                        "summary": summary})
    return summary
