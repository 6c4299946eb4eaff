"""Optional CheXbert labeler (Smit et al. 2020) from a local checkpoint; never downloads.

Enabled by ``evaluation.chexbert.checkpoint`` (the released ``chexbert.pth``). The network
is the ``bert_labeler`` of the ``f1chexbert`` package (``pip install 'crrg-clip[chexbert]'``):
BERT-base plus 13 four-way heads (blank / positive / negative / uncertain) and a two-way
No Finding head. ``f1chexbert.F1CheXbert`` itself cannot be pointed at a file: it reads
``~/.cache/chexbert/chexbert.pth`` (downloading it from the hub when absent) and fetches
``bert-base-uncased``'s config and tokenizer from the hub. So we build ``bert_labeler``
ourselves from a local ``bert-base-uncased`` directory (``vocab.txt`` + ``config.json``:
``bert_dir``, default ``<checkpoint dir>/bert-base-uncased``, else the local Hugging Face
cache only) and load the checkpoint's weights into it.
"""

from __future__ import annotations

import importlib
import math
from collections.abc import Sequence
from pathlib import Path
from unittest import mock

import numpy as np
import pandas as pd

from .chexpert_labeler import CHEXPERT_OBSERVATIONS

CHECKPOINT_KEY = "evaluation.chexbert.checkpoint"
BERT_DIR_KEY = "evaluation.chexbert.bert_dir"
# CheXbert's head order (its CONDITIONS list) and class meaning per head.
CHEXBERT_ORDER: tuple[str, ...] = (
    "Enlarged Cardiomediastinum", "Cardiomegaly", "Lung Opacity", "Lung Lesion", "Edema",
    "Consolidation", "Pneumonia", "Atelectasis", "Pneumothorax", "Pleural Effusion",
    "Pleural Other", "Fracture", "Support Devices", "No Finding",
)
_CLASS_VALUE = (math.nan, 1.0, 0.0, -1.0)  # 0 blank, 1 positive, 2 negative, 3 uncertain


def _import_f1chexbert():
    try:
        return importlib.import_module("f1chexbert.f1chexbert")
    except ImportError as err:
        raise ValueError(
            f"{CHECKPOINT_KEY} is set, but the optional package f1chexbert is not installed "
            f"(pip install 'crrg-clip[chexbert]'): {err}"
        ) from err


def _bert_files(checkpoint: Path, bert_dir: str | Path | None) -> str:
    """The local bert-base-uncased location (a directory, or the hub id for cache-only use)."""
    if bert_dir is not None:
        path = Path(bert_dir)
        if not (path / "vocab.txt").is_file():
            raise FileNotFoundError(f"{BERT_DIR_KEY}: no vocab.txt in {path}")
        return str(path)
    sibling = checkpoint.parent / "bert-base-uncased"
    if (sibling / "vocab.txt").is_file():
        return str(sibling)
    return "bert-base-uncased"  # resolved with local_files_only=True below


class CheXbertLabeler:
    """``label(texts)`` with the same output as ``ChexpertLabeler.label``; name "CheXbert"."""

    name = "CheXbert"

    def __init__(self, model, tokenizer, device: str, batch_size: int = 16) -> None:
        self._model = model
        self._tokenizer = tokenizer
        self._device = device
        self._batch_size = batch_size
        self._cache: dict[str, np.ndarray] = {}

    def _label_batch(self, texts: list[str]) -> np.ndarray:
        import torch

        enc = self._tokenizer(
            [" ".join(t.split()) for t in texts], truncation=True, max_length=512,
            padding=True, return_tensors="pt",
        )
        with torch.no_grad():
            heads = self._model(enc["input_ids"].to(self._device),
                                enc["attention_mask"].to(self._device))
        classes = np.stack([h.argmax(dim=1).cpu().numpy() for h in heads], axis=1)  # (B, 14)
        values = np.vectorize(lambda c: _CLASS_VALUE[c])(classes).astype(float)
        order = [CHEXBERT_ORDER.index(o) for o in CHEXPERT_OBSERVATIONS]
        return values[:, order]

    def label(self, texts: Sequence[str]) -> pd.DataFrame:
        texts = ["" if t is None else str(t) for t in texts]
        todo = [t for t in dict.fromkeys(texts) if t not in self._cache]
        for start in range(0, len(todo), self._batch_size):
            batch = todo[start:start + self._batch_size]
            for text, row in zip(batch, self._label_batch(batch), strict=True):
                self._cache[text] = row
        rows = np.array([self._cache[t] for t in texts]).reshape(len(texts), len(CHEXPERT_OBSERVATIONS))
        return pd.DataFrame(rows, columns=list(CHEXPERT_OBSERVATIONS))


def load_chexbert_labeler(
    checkpoint_path: str | Path | None,
    bert_dir: str | Path | None = None,
    device: str = "cpu",
    batch_size: int = 16,
) -> CheXbertLabeler:
    """A CheXbert labeler from local files only; clear errors name the config key."""
    if checkpoint_path is None or str(checkpoint_path).strip() == "":
        raise ValueError(f"{CHECKPOINT_KEY} is not set: give the path of a local chexbert.pth")
    checkpoint = Path(checkpoint_path)
    if not checkpoint.is_file():
        raise FileNotFoundError(f"{CHECKPOINT_KEY}: no CheXbert checkpoint at {checkpoint}")
    f1chexbert = _import_f1chexbert()
    import torch
    from transformers import BertConfig, BertTokenizer

    bert = _bert_files(checkpoint, bert_dir)
    try:
        tokenizer = BertTokenizer.from_pretrained(bert, local_files_only=True)
        config = BertConfig.from_pretrained(bert, local_files_only=True)
    except OSError as err:
        raise FileNotFoundError(
            f"CheXbert needs bert-base-uncased's vocab.txt and config.json locally: set "
            f"{BERT_DIR_KEY} or put them in {checkpoint.parent / 'bert-base-uncased'} ({err})"
        ) from err

    class _LocalConfig:  # bert_labeler asks AutoConfig for 'bert-base-uncased': answer locally
        @staticmethod
        def from_pretrained(*_args, **_kwargs):
            return config

    with mock.patch.object(f1chexbert, "AutoConfig", _LocalConfig):
        model = f1chexbert.bert_labeler(inference=True)
    state = torch.load(checkpoint, map_location=device, weights_only=True)
    state = state.get("model_state_dict", state)
    state = {k.removeprefix("module."): v for k, v in state.items()}
    missing, unexpected = model.load_state_dict(state, strict=False)
    # position_ids is a buffer some transformers versions save and others do not
    missing = [k for k in missing if not k.endswith("position_ids")]
    unexpected = [k for k in unexpected if not k.endswith("position_ids")]
    if missing or unexpected:
        raise ValueError(
            f"{CHECKPOINT_KEY}: {checkpoint} is not a CheXbert checkpoint "
            f"(missing {missing[:3]}, unexpected {unexpected[:3]})"
        )
    model.to(device).eval()
    return CheXbertLabeler(model, tokenizer, device, batch_size)
