"""RRG stage 3: train the region-conditioned generator on regions that have a sentence.

The input feature of a region is the frozen selector's projection of its detector feature.
A batch is ``batch_size`` images with all their sentence-bearing regions (Appendix Table 4
counts images). AdamW over the trainable parameters (the conditioning; GPT-2 too unless
frozen), ReduceLROnPlateau on the validation loss, best epoch by validation loss,
resumable through ``train.loop.fit``.
Letters: I images, R regions, D projected feature, S sentences in a batch, T tokens.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import torch

from crrg_clip.generate import autocast, read_region_features, select_and_project
from crrg_clip.models.generator import (LanguageModelLoss, RegionGenerator, build_generator, collate_targets,
                                        encode_sentences, save_generator)
from crrg_clip.train.loop import epoch_batches, fit, plot_loss_curve, reset_stale_checkpoint, tensor_stamp

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

    ``detector_features``: the detector's region features, projected by the generator's own
    (trainable) feature MLP, so the language-model loss shapes the projection as the paper's
    joint stage 3 does; ``selector_projection``: the frozen selector's projection, trained
    only for selection and the abnormal flag.
    """
    if input_kind == "detector_features":
        return region_features["features"].float()
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
    import hashlib
    import json

    items = json.dumps([data.dicom_ids, data.items]).encode()
    return tensor_stamp(data.features) + hashlib.sha256(items).hexdigest()


def batch_tensors(data: SentenceData, image_indices: list[int], pad_id: int) -> dict[str, torch.Tensor]:
    features, sequences = [], []
    for i in image_indices:
        for region_index, ids in data.items[i]:
            features.append(data.features[i, region_index])
            sequences.append(ids)
    return {"features": torch.stack(features), **collate_targets(sequences, pad_id)}  # (S, D), (S, T)


def _lm_loss(generator: RegionGenerator, loss_fn, batch: dict, device: torch.device, amp: str):
    batch = {k: v.to(device) for k, v in batch.items()}
    with autocast(device, amp):
        logits = generator(batch["features"], batch["input_ids"], batch["attention_mask"])  # (S, T, V)
    return loss_fn(logits, batch["labels"]), int((batch["labels"][:, 1:] != -100).sum())


def train_generator(generator: RegionGenerator, train: SentenceData, valid: SentenceData, *, epochs: int,
                    batch_size: int, lr: float, weight_decay: float, factor: float, cooldown: int, patience: int,
                    freeze_gpt2: bool, seed: int, device: torch.device, checkpoint_dir, metrics_path,
                    amp: str = "none", progress: bool = True, eval_every: int | None = None):
    """Fit in place (best epoch's weights on return); returns the loop's History."""
    from tqdm import tqdm

    generator.to(device)
    generator.freeze_gpt2(freeze_gpt2)
    # A frozen GPT-2 stays out of the optimiser and the checkpoint: the trainable part is the conditioning
    trainable = generator.conditioning if freeze_gpt2 else generator
    optimizer = torch.optim.AdamW([p for p in trainable.parameters() if p.requires_grad], lr=lr,
                                  weight_decay=weight_decay)
    scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, mode="min", factor=factor,
                                                           cooldown=cooldown, patience=patience)
    loss_fn = LanguageModelLoss()
    pad_id = generator.eos_token_id
    # a checkpoint of other settings, other data or another starting model is not resumed
    reset_stale_checkpoint(checkpoint_dir, {
        "settings": {"epochs": epochs, "batch_size": batch_size, "lr": lr, "weight_decay": weight_decay,
                     "factor": factor, "cooldown": cooldown, "patience": patience, "freeze_gpt2": freeze_gpt2,
                     "seed": seed, "amp": amp, "eval_every": eval_every},
        "train": sentence_data_stamp(train), "valid": sentence_data_stamp(valid),
        "initial_weights": tensor_stamp(*trainable.state_dict().values())})

    def train_epoch(epoch: int, on_step=None) -> dict[str, float]:
        generator.train()
        batches = epoch_batches(len(train.items), batch_size, seed=seed, epoch=epoch)
        total, count = 0.0, 0
        bar = tqdm(batches, desc=f"generator epoch {epoch}", disable=not progress)
        for indices in bar:
            losses, _ = _lm_loss(generator, loss_fn, batch_tensors(train, indices, pad_id), device, amp)
            optimizer.zero_grad(set_to_none=True)
            losses["lm"].backward()
            optimizer.step()
            total += float(losses["lm"].detach()) * len(indices)
            count += len(indices)
            bar.set_postfix(loss=f"{total / count:.4f}")
            if on_step is not None:  # fit's every-K-steps evaluation
                on_step()
        return {"loss": total / count}

    def validate() -> float:
        generator.eval()
        total, tokens = 0.0, 0
        for indices in epoch_batches(len(valid.items), batch_size, seed=seed, epoch=0, shuffle=False):
            losses, n_tokens = _lm_loss(generator, loss_fn, batch_tensors(valid, indices, pad_id), device, amp)
            total += float(losses["lm"]) * n_tokens
            tokens += n_tokens
        return total / max(tokens, 1)

    history = fit(trainable, optimizer, train_epoch=train_epoch, validate=validate, epochs=epochs,
                  checkpoint_dir=checkpoint_dir, metrics_path=metrics_path, scheduler=scheduler,
                  eval_every=eval_every)
    generator.eval()
    return history


def run_train_generator(*, gpt2_source: str, selector_folder, train_features, valid_features, regions_path,
                        output_dir, checkpoint_dir, seed: int, device: str, epochs: int, batch_size: int,
                        lr: float, weight_decay: float, factor: float, cooldown: int, patience: int,
                        freeze_gpt2: bool, feature_dim: int, hidden_dim: int, max_sentence_tokens: int,
                        amp: str = "none", threads: int = 0, settings: dict | None = None,
                        input_kind: str = "selector_projection", eval_every: int | None = None) -> dict:
    """Paths in, a generator folder out (+ metrics.tsv, loss_curve.png, run.json)."""
    from crrg_clip.models.selector import load_selector
    from crrg_clip.runinfo import now, write_run_info
    from crrg_clip.runtime import describe_device, pick_device, seed_everything, set_threads

    started = now()
    set_threads(threads)
    seed_everything(seed)
    torch_device = pick_device(device)
    output_dir = Path(output_dir)
    selector = load_selector(selector_folder, torch_device)
    features = {split: read_region_features(path) for split, path in (("train", train_features),
                                                                        ("valid", valid_features))}
    if input_kind == "detector_features":
        feature_dim = int(features["train"]["features"].shape[-1])  # C: the detector's channels
    generator = build_generator(gpt2_source, feature_dim=feature_dim, hidden_dim=hidden_dim, device=torch_device)
    regions = pd.read_parquet(regions_path)
    data = {}
    for split, path in (("train", train_features), ("valid", valid_features)):
        data[split] = build_sentence_data(features[split], regions, selector, generator.tokenizer,
                                          max_tokens=max_sentence_tokens, device=torch_device, source=str(path),
                                          input_kind=input_kind)
    log.info("generator: %d train sentences (%d images), %d valid sentences", data["train"].n_sentences,
             len(data["train"].items), data["valid"].n_sentences)
    metrics_path = output_dir / "metrics.tsv"
    history = train_generator(generator, data["train"], data["valid"], epochs=epochs, batch_size=batch_size,
                              lr=lr, weight_decay=weight_decay, factor=factor, cooldown=cooldown,
                              patience=patience, freeze_gpt2=freeze_gpt2, seed=seed, device=torch_device,
                              checkpoint_dir=checkpoint_dir, metrics_path=metrics_path, amp=amp,
                              eval_every=eval_every)
    save_generator(output_dir, generator, extra={"gpt2_source": str(gpt2_source), "freeze_gpt2": freeze_gpt2,
                                                 "max_sentence_tokens": max_sentence_tokens, "input": input_kind})
    plot_loss_curve(metrics_path, output_dir / "loss_curve.png", "generator (LM loss)")
    summary = {"best_epoch": history.best_epoch, "best_val_loss": history.best_val,
               "train_sentences": data["train"].n_sentences, "valid_sentences": data["valid"].n_sentences,
               "left_out": {split: d.left_out for split, d in data.items()}}
    write_run_info(output_dir / "run.json", started=started, device=describe_device(torch_device), seed=seed,
                   settings=settings or {}, extra={"summary": summary})
    return summary
