"""A resumable training loop shared by every stage.

Each epoch ends with an atomic checkpoint (model, optimiser, scheduler, RNG state, history,
best weights) under ``checkpoint_dir``, outside the rule's declared outputs; it is removed
when the training finishes. A job killed
mid-run and started again continues from its last finished epoch and, on CPU, ends with
the same weights as an uninterrupted run: the data order of epoch ``e`` depends only on
``(seed, e)`` and the global RNG state is restored.
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import json
import logging
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch
from torch import nn

from crrg_clip.runtime import JobRuntime
from crrg_clip.settings import Schedule  # noqa: F401  (defined torch-free for the rules; the trainers' import)

log = logging.getLogger(__name__)

CHECKPOINT = "last.pt"


@dataclass
class History:
    rows: list[dict] = field(default_factory=list)
    best_val: float = math.inf
    best_epoch: int = -1


def reset_stale_checkpoint(checkpoint_dir: Path | str, fingerprint: dict) -> None:
    """Drop a resume checkpoint written for other settings or inputs (a rerun starts afresh)."""
    checkpoint_dir = Path(checkpoint_dir)
    checkpoint_dir.mkdir(parents=True, exist_ok=True)
    stamp = checkpoint_dir / "fingerprint.json"
    text = json.dumps(fingerprint, sort_keys=True, default=str)
    checkpoint = checkpoint_dir / CHECKPOINT
    if checkpoint.exists() and (not stamp.exists() or stamp.read_text() != text):
        log.info("checkpoint in %s belongs to other settings or inputs: starting afresh", checkpoint_dir)
        checkpoint.unlink()
    stamp.write_text(text)


def file_stamp(*paths: Path | str) -> list:
    """Path, size and SHA-256 of input files, for a checkpoint's fingerprint.

    Content, not modification time: a rule that rewrites an input with other content (same
    path, same size) must not resume, and one that rewrites identical content may.
    """
    return [[str(p), os.stat(p).st_size, _sha256_file(p)] for p in paths]


def _sha256_file(path: Path | str, chunk: int = 1 << 24) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def tensor_stamp(*tensors: torch.Tensor) -> str:
    """SHA-256 of tensors' dtypes, shapes and values: the fingerprint of in-memory inputs."""
    digest = hashlib.sha256()
    for tensor in tensors:
        digest.update(f"{tensor.dtype}{tuple(tensor.shape)}".encode())
        flat = tensor.detach().to("cpu").contiguous().reshape(-1)
        digest.update(flat.view(torch.uint8).numpy().tobytes() if flat.numel() else b"")
    return digest.hexdigest()


def epoch_batches(n_items: int, batch_size: int, *, seed: int, epoch: int,
                  shuffle: bool = True, drop_last: bool = False) -> list[list[int]]:
    """Index batches for one epoch; the order depends only on (seed, epoch).

    Refuses to produce an empty epoch: a small subset with ``drop_last`` silently training on
    nothing is a known trap (FORMATS.md, RSNA).
    """
    if n_items <= 0:
        raise ValueError("no training items: the epoch would be empty")
    if shuffle:
        generator = torch.Generator().manual_seed(seed * 100_003 + epoch)
        order = torch.randperm(n_items, generator=generator).tolist()
    else:
        order = list(range(n_items))
    batches = [order[i:i + batch_size] for i in range(0, n_items, batch_size)]
    if drop_last and len(batches) > 1 and len(batches[-1]) < batch_size:
        batches = batches[:-1]
    return batches


class _Batches(torch.utils.data.Dataset):
    """Batch ``i`` of an epoch = ``make(batches[i])``: a DataLoader item is a whole batch."""

    def __init__(self, make: Callable[[list[int]], object], batches: list[list[int]]):
        self.make, self.batches = make, batches

    def __len__(self) -> int:
        return len(self.batches)

    def __getitem__(self, i: int):
        return self.make(self.batches[i])


def batch_loader(make: Callable[[list[int]], object], batches: list[list[int]], *, num_workers: int = 0,
                 pin_memory: bool = False):
    """``make(batch)`` for each index batch, in order.

    ``num_workers == 0`` calls ``make`` in this process (no DataLoader at all); otherwise worker
    processes build the batches ahead of the training step, ``pin_memory`` for fast copies to
    the GPU. ``make`` must depend only on its indices (items seeded per (seed, epoch, item)), so
    both give the same batches; workers read a memmap cache through their own pages.
    """
    if num_workers <= 0:
        return (make(batch) for batch in batches)
    return torch.utils.data.DataLoader(_Batches(make, batches), batch_size=None, shuffle=False,
                                       num_workers=num_workers, pin_memory=pin_memory,
                                       persistent_workers=False, prefetch_factor=2)


def _rng_state() -> dict:
    state = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _cpu_state(module: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().to("cpu", copy=True) for k, v in module.state_dict().items()}


def _save_atomic(obj, path: Path) -> None:
    tmp = path.with_suffix(".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def fit(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    *,
    train_epoch: Callable[[int], dict[str, float]],
    validate: Callable[[], float],
    epochs: int,
    checkpoint_dir: Path | str,
    metrics_path: Path | str,
    scheduler=None,
    eval_every: int | None = None,
) -> History:
    """Train for ``epochs``, resuming from ``checkpoint_dir`` if a checkpoint is there.

    ``train_epoch(epoch)`` runs one epoch and returns mean losses (``{"loss": ..., ...}``);
    per-batch schedulers are stepped inside it. ``validate()`` returns the validation loss
    used to pick the best epoch and to step a ReduceLROnPlateau scheduler.
    On return the model holds the best epoch's weights.

    ``eval_every`` (K optimiser steps; None/0 = once per epoch): ``train_epoch`` is called as
    ``train_epoch(epoch, on_step=hook)`` and calls ``hook()`` after every optimiser step; every
    K-th step of an epoch (the counter restarts each epoch, as in RGRG) validates, steps the
    scheduler and may take the best weights, besides the end-of-epoch evaluation. A resume
    restarts the killed epoch, so its mid-epoch evaluations recur at the same steps.
    """
    checkpoint_dir = Path(checkpoint_dir)
    checkpoint_dir.mkdir(parents=True, exist_ok=True)
    path = checkpoint_dir / CHECKPOINT
    history = History()
    best_state = None
    start_epoch = 0
    if path.exists():
        # weights_only: tensors, numbers, strings and dicts only; nothing arbitrary is unpickled
        saved = torch.load(path, map_location="cpu", weights_only=True)
        try:
            model.load_state_dict(saved["model"])
        except RuntimeError as error:
            raise RuntimeError(f"{path}: this resume checkpoint belongs to a different model; delete it "
                               f"to start afresh ({str(error).splitlines()[0]})") from error
        optimizer.load_state_dict(saved["optimizer"])
        if scheduler is not None and saved.get("scheduler") is not None:
            scheduler.load_state_dict(saved["scheduler"])
        history = History(rows=saved["history"], best_val=saved["best_val"], best_epoch=saved["best_epoch"])
        best_state = saved["best_model"]
        _set_rng_state(saved["rng"])
        start_epoch = saved["epoch"] + 1
        log.info("resuming from %s after epoch %d", path, saved["epoch"])

    plateau = isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau)

    def evaluate(epoch: int) -> float:
        """Validate, step a plateau scheduler, keep the weights if they are the best so far."""
        nonlocal best_state
        model.eval()
        with torch.no_grad():
            val_loss = float(validate())
        if plateau:
            scheduler.step(val_loss)
        # a non-finite loss never becomes the best: NaN < x is always False, so a NaN best_val
        # would freeze the best checkpoint at that epoch for good
        better = math.isfinite(val_loss) and val_loss < history.best_val
        if better or best_state is None:
            best_state = _cpu_state(model)
            history.best_epoch = epoch
            if better:
                history.best_val = val_loss
        return val_loss

    for epoch in range(start_epoch, epochs):
        model.train()
        last = {"steps": 0, "val_loss": None}  # the latest mid-epoch evaluation, None after a step
        if eval_every:
            def on_step(epoch=epoch) -> None:
                last["steps"] += 1
                last["val_loss"] = None
                if last["steps"] % eval_every == 0:
                    last["val_loss"] = evaluate(epoch)
                    log.info("epoch %d step %d: val_loss %.5f, lr %g", epoch, last["steps"], last["val_loss"],
                             optimizer.param_groups[0]["lr"])
                    model.train()

            losses = train_epoch(epoch, on_step=on_step)
        else:
            losses = train_epoch(epoch)
        # the epoch's last step already evaluated: do not validate (and step the scheduler) twice
        val_loss = last["val_loss"] if last["val_loss"] is not None else evaluate(epoch)
        row = {"epoch": epoch, **{f"train_{k}": float(v) for k, v in losses.items()},
               "val_loss": val_loss, "lr": optimizer.param_groups[0]["lr"]}
        history.rows.append(row)
        log.info("epoch %d: %s", epoch, {k: round(v, 5) for k, v in row.items() if k != "epoch"})
        _save_atomic({
            "epoch": epoch,
            "model": _cpu_state(model),
            "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict() if scheduler is not None else None,
            "history": history.rows,
            "best_val": history.best_val,
            "best_epoch": history.best_epoch,
            "best_model": best_state,
            "rng": _rng_state(),
        }, path)
        write_metrics(history.rows, metrics_path)

    if best_state is not None:
        model.load_state_dict(best_state)
    write_metrics(history.rows, metrics_path)
    # A finished training needs no resume point; leaving it would let a later rerun (with new
    # inputs) "resume" a model it has nothing to do with.
    path.unlink(missing_ok=True)
    return history


def autocast(device: torch.device, amp: str | None):
    """bf16/fp16 autocast on CUDA; elsewhere (and for ``none``) float32."""
    if amp in (None, "none", "fp32") or device.type != "cuda":
        return contextlib.nullcontext()
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}[amp]
    return torch.autocast(device_type=device.type, dtype=dtype)


def make_optimizer(model: nn.Module, schedule: Schedule):
    """AdamW on the trainable parameters + ReduceLROnPlateau on the validation loss (the RRG stages)."""
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=schedule.lr, weight_decay=schedule.weight_decay)
    scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(
        optimizer, mode="min", factor=schedule.factor, patience=schedule.patience, cooldown=schedule.cooldown)
    return optimizer, scheduler


class Trainer:
    """One stage's training: ``step(batch)``, ``train_epoch(epoch, on_step=None)``, ``validate()``,
    and ``fit`` driving ``loop.fit``.

    A subclass sets ``model`` (what the checkpoint holds), ``optimizer``, ``epochs`` and, when it
    has them, ``scheduler`` and ``eval_every``.
    """

    model: nn.Module
    optimizer: torch.optim.Optimizer
    epochs: int
    scheduler = None
    eval_every: int | None = None

    def step(self, batch) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    def train_epoch(self, epoch: int, on_step=None) -> dict[str, float]:
        raise NotImplementedError

    def validate(self) -> float:
        raise NotImplementedError

    def fit(self, checkpoint_dir: Path | str, metrics_path: Path | str) -> History:
        return fit(self.model, self.optimizer, train_epoch=self.train_epoch, validate=self.validate,
                   epochs=self.epochs, checkpoint_dir=checkpoint_dir, metrics_path=metrics_path,
                   scheduler=self.scheduler, eval_every=self.eval_every)


def runtime_record(device: torch.device, num_workers: int = 0) -> dict:
    """run.json's ``runtime`` block: how the job ran (never part of a resume fingerprint)."""
    return JobRuntime(device=device, threads=torch.get_num_threads(), num_workers=num_workers).record()


def write_metrics(rows: list[dict], path: Path | str) -> None:
    """Per-epoch metrics as TSV (the union of keys, in first-seen order)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    keys: list[str] = []
    for row in rows:
        keys += [k for k in row if k not in keys]
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=keys or ["epoch"], delimiter="\t")
        writer.writeheader()
        writer.writerows(rows)


def plot_loss_curve(metrics_path: Path | str, png_path: Path | str, title: str) -> None:
    """Training and validation loss per epoch, one PNG per stage."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import pandas as pd

    frame = pd.read_csv(metrics_path, sep="\t")
    fig, ax = plt.subplots(figsize=(5, 3.2))
    for column in [c for c in frame.columns if c.startswith("train_") or c == "val_loss"]:
        ax.plot(frame["epoch"] + 1, frame[column], marker="o", label=column)
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss")
    ax.set_title(title)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(png_path, dpi=120)
    plt.close(fig)
