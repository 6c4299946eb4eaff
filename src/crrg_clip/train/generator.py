"""RRG stage 3: train the region-conditioned generator on regions that have a sentence.

The input feature of a region is the frozen selector's projection of its detector feature.
A batch is ``batch_size`` images with all their sentence-bearing regions (Appendix Table 4
counts images). AdamW over the trainable parameters (the conditioning; GPT-2 too unless
frozen), ReduceLROnPlateau on the validation loss, best epoch by validation loss,
resumable through ``train.loop.fit``.
Letters: I images, R regions, D projected feature, S sentences in a batch, T tokens.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import asdict, dataclass, field
from pathlib import Path

import pandas as pd
import torch
from tqdm import tqdm

from crrg_clip.generate import read_region_features, select_and_project
from crrg_clip.models.generator import (LanguageModelLoss, RegionGenerator, build_generator, collate_targets,
                                        encode_sentences)
from crrg_clip.models.selector import RegionSelector
from crrg_clip.runinfo import now, write_run_info
from crrg_clip.runtime import describe_device, seed_everything
from crrg_clip.settings import GeneratorSettings, to_params
from crrg_clip.train.loop import (Schedule, Trainer, autocast, epoch_batches, make_optimizer, plot_loss_curve,
                                  reset_stale_checkpoint, runtime_record, tensor_stamp)

log = logging.getLogger(__name__)


@dataclass
class SentenceData:
    """Per image the (region_index, token ids) of its reference sentences, and all projected features."""

    dicom_ids: list[str]
    features: torch.Tensor  # (I, R, D) float32, CPU
    items: list[list[tuple[int, list[int]]]]
    left_out: dict = field(default_factory=dict)

    @property
    def n_sentences(self) -> int:
        return sum(len(item) for item in self.items)


GENERATOR_INPUTS = ("detector_features", "selector_projection")


def generator_inputs(region_features: dict, selector, input_kind: str, device: torch.device) -> torch.Tensor:
    """What the generator is conditioned on, (I, R, C or D) float32 on the CPU.

    ``detector_features``: the detector's region features, standardised with the selector's
    training statistics and projected by the generator's own (trainable) feature MLP, so the
    language-model loss shapes the projection as the paper's joint stage 3 does;
    ``selector_projection``: the frozen selector's projection, trained
    only for selection and the abnormal flag.
    """
    if input_kind == "detector_features":
        return selector.standardize(region_features["features"].float())
    if input_kind == "selector_projection":
        return select_and_project(selector, region_features["features"], device)[2]
    raise ValueError(f"rrg.generator_input {input_kind!r}: expected one of {GENERATOR_INPUTS}")


def build_sentence_data(region_features: dict, regions: pd.DataFrame, selector, tokenizer, *,
                        max_tokens: int, device: torch.device, source: str = "",
                        input_kind: str = "selector_projection") -> SentenceData:
    """Training targets: the regions the detector found that have a reference sentence.

    A region the detector did not find has a zero feature, a case inference never conditions
    on (it is never selected), so its sentence is left out, as RGRG trains only on detected
    regions. Everything left out is counted in ``SentenceData.left_out``.
    """
    for column in ("dicom_id", "region_index", "phrase", "has_sentence"):
        if column not in regions.columns:
            raise ValueError(f"regions table lacks column {column!r}")
    inputs = generator_inputs(region_features, selector, input_kind, device)  # (I, R, C|D)
    row_of = {d: i for i, d in enumerate(region_features["dicom_id"])}
    detected = region_features["detected"].bool()  # (I, R)
    frame = regions[regions["has_sentence"].astype(bool) & regions["dicom_id"].astype(str).isin(row_of.keys())]
    frame = frame.assign(dicom_id=frame["dicom_id"].astype(str), phrase=frame["phrase"].fillna("").astype(str))
    blank = frame["phrase"].str.strip() == ""
    frame = frame[~blank]
    found = [bool(detected[row_of[d], int(r)]) for d, r in zip(frame["dicom_id"], frame["region_index"])]
    undetected = frame[[not f for f in found]]
    frame = frame[found].sort_values(["dicom_id", "region_index"])
    encoded = encode_sentences(tokenizer, frame["phrase"].tolist(), max_tokens) if len(frame) else []
    truncated = int(sum(len(ids) == max_tokens for ids in encoded))
    per_image: dict[str, list[tuple[int, list[int]]]] = {}
    for dicom_id, region_index, ids in zip(frame["dicom_id"], frame["region_index"], encoded):
        per_image.setdefault(dicom_id, []).append((int(region_index), ids))
    kept = [d for d in region_features["dicom_id"] if d in per_image]
    if not kept:
        raise ValueError(f"{source}: no detected region has a sentence; nothing to train on")
    left_out = {
        "sentences_of_undetected_regions": int(len(undetected)),
        "blank_phrases_flagged_has_sentence": int(blank.sum()),
        "sentences_truncated_at_max_tokens": truncated,
        "images_without_a_target": [d for d in region_features["dicom_id"] if d not in per_image],
    }
    log.info("%s: %d sentences of undetected regions left out, %d blank phrases, %d truncated, "
             "%d image(s) without a target", source, left_out["sentences_of_undetected_regions"],
             left_out["blank_phrases_flagged_has_sentence"], truncated, len(left_out["images_without_a_target"]))
    rows = torch.tensor([row_of[d] for d in kept])
    return SentenceData(dicom_ids=kept, features=inputs[rows], items=[per_image[d] for d in kept],
                        left_out=left_out)


def sentence_data_stamp(data: SentenceData) -> str:
    """Content fingerprint of training data: its features, ids and token ids."""
    items = json.dumps([data.dicom_ids, data.items]).encode()
    return tensor_stamp(data.features) + hashlib.sha256(items).hexdigest()


def batch_tensors(data: SentenceData, image_indices: list[int], pad_id: int) -> dict[str, torch.Tensor]:
    features, sequences = [], []
    for i in image_indices:
        for region_index, ids in data.items[i]:
            features.append(data.features[i, region_index])
            sequences.append(ids)
    return {"features": torch.stack(features), **collate_targets(sequences, pad_id)}  # (S, D), (S, T)


class GeneratorTrainer(Trainer):
    """Fits the generator in place (the best epoch's weights after ``fit``).

    AdamW + ReduceLROnPlateau over the trainable part: the conditioning alone when GPT-2 is
    frozen (a frozen GPT-2 stays out of the optimiser and the checkpoint), else everything.
    """

    def __init__(self, generator: RegionGenerator, train: SentenceData, valid: SentenceData, schedule: Schedule, *,
                 freeze_gpt2: bool, device: torch.device, seed: int, amp: str = "none", progress: bool = True):
        self.generator, self.train, self.valid, self.schedule = generator.to(device), train, valid, schedule
        self.freeze_gpt2, self.device, self.seed, self.amp, self.progress = freeze_gpt2, device, seed, amp, progress
        generator.freeze_gpt2(freeze_gpt2)
        self.model = generator.conditioning if freeze_gpt2 else generator
        self.optimizer, self.scheduler = make_optimizer(self.model, schedule)
        self.epochs, self.eval_every = schedule.epochs, schedule.eval_every
        self.loss_fn = LanguageModelLoss()
        self.pad_id = generator.eos_token_id

    def fingerprint(self) -> dict:
        """What a resume checkpoint must match (call before ``fit``): schedule, data, starting weights."""
        return {"schedule": asdict(self.schedule), "freeze_gpt2": self.freeze_gpt2, "amp": self.amp,
                "seed": self.seed, "train": sentence_data_stamp(self.train), "valid": sentence_data_stamp(self.valid),
                "initial_weights": tensor_stamp(*self.model.state_dict().values())}

    def _loss(self, batch: dict) -> tuple[dict, int]:
        """The LM losses of a ``batch_tensors`` batch and its number of target tokens."""
        batch = {k: v.to(self.device) for k, v in batch.items()}
        with autocast(self.device, self.amp):
            logits = self.generator(batch["features"], batch["input_ids"], batch["attention_mask"])  # (S, T, V)
        return self.loss_fn(logits, batch["labels"]), int((batch["labels"][:, 1:] != -100).sum())

    def step(self, batch: dict) -> dict[str, torch.Tensor]:
        losses, _ = self._loss(batch)
        self.optimizer.zero_grad(set_to_none=True)
        losses["lm"].backward()
        self.optimizer.step()
        return {"loss": losses["lm"].detach()}

    def train_epoch(self, epoch: int, on_step=None) -> dict[str, float]:
        self.generator.train()
        batches = epoch_batches(len(self.train.items), self.schedule.batch_size, seed=self.seed, epoch=epoch)
        total, count = 0.0, 0
        bar = tqdm(batches, desc=f"generator epoch {epoch}", disable=not self.progress)
        for indices in bar:
            loss = self.step(batch_tensors(self.train, indices, self.pad_id))["loss"]
            total += float(loss) * len(indices)
            count += len(indices)
            bar.set_postfix(loss=f"{total / count:.4f}")
            if on_step is not None:  # fit's every-K-steps evaluation
                on_step()
        return {"loss": total / count}

    def validate(self) -> float:
        """Mean LM loss per target token."""
        self.generator.eval()
        total, tokens = 0.0, 0
        for indices in epoch_batches(len(self.valid.items), self.schedule.batch_size, seed=self.seed, epoch=0,
                                     shuffle=False):
            losses, n_tokens = self._loss(batch_tensors(self.valid, indices, self.pad_id))
            total += float(losses["lm"]) * n_tokens
            tokens += n_tokens
        return total / max(tokens, 1)


def train_generator(settings: GeneratorSettings, inputs, outputs, *, device: torch.device, seed: int,
                    checkpoint_dir, num_workers: int = 0, progress: bool = True) -> dict:
    """Rule train_generator: ``inputs`` selector_config, train_features, valid_features, regions;
    ``outputs["generator"]`` gets the generator folder (+ metrics.tsv, loss_curve.png, run.json).
    ``num_workers`` is unused: the sentences are in memory."""
    started = now()
    seed_everything(seed)
    output_dir = Path(outputs["generator"])
    selector = RegionSelector.from_pretrained(Path(inputs["selector_config"]).parent, device)
    paths = {split: inputs[f"{split}_features"] for split in ("train", "valid")}
    features = {split: read_region_features(path) for split, path in paths.items()}
    feature_dim = settings.feature_dim
    if settings.input_kind == "detector_features":
        feature_dim = int(features["train"]["features"].shape[-1])  # C: the detector's channels
    generator = build_generator(settings.gpt2_source, feature_dim=feature_dim, hidden_dim=settings.hidden_dim,
                                device=device)
    regions = pd.read_parquet(inputs["regions"])
    data = {split: build_sentence_data(features[split], regions, selector, generator.tokenizer,
                                       max_tokens=settings.max_sentence_tokens, device=device, source=str(path),
                                       input_kind=settings.input_kind)
            for split, path in paths.items()}
    log.info("generator: %d train sentences (%d images), %d valid sentences", data["train"].n_sentences,
             len(data["train"].items), data["valid"].n_sentences)
    trainer = GeneratorTrainer(generator, data["train"], data["valid"], settings.schedule,
                               freeze_gpt2=settings.freeze_gpt2, device=device, seed=seed, amp=settings.amp,
                               progress=progress)
    # a checkpoint of other settings, other data or another starting model is not resumed
    reset_stale_checkpoint(checkpoint_dir, {"settings": to_params(settings), **trainer.fingerprint()})
    metrics_path = output_dir / "metrics.tsv"
    history = trainer.fit(checkpoint_dir, metrics_path)
    generator.eval()
    generator.save_pretrained(output_dir, extra={"gpt2_source": str(settings.gpt2_source),
                                                 "freeze_gpt2": settings.freeze_gpt2,
                                                 "max_sentence_tokens": settings.max_sentence_tokens,
                                                 "input": settings.input_kind})
    plot_loss_curve(metrics_path, output_dir / "loss_curve.png", "generator (LM loss)")
    summary = {"best_epoch": history.best_epoch, "best_val_loss": history.best_val,
               "train_sentences": data["train"].n_sentences, "valid_sentences": data["valid"].n_sentences,
               "left_out": {split: d.left_out for split, d in data.items()}}
    write_run_info(output_dir / "run.json", started=started, device=describe_device(device), seed=seed,
                   settings=to_params(settings), extra={"runtime": runtime_record(device, num_workers),
                                                        "inputs": {k: str(v) for k, v in paths.items()},
                                                        "summary": summary})
    return summary
