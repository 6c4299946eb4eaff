"""The demo's GPT-2: a small ``GPT2LMHeadModel`` and a byte-level BPE tokenizer trained on
the demo corpus (FINDINGS and region phrases of the training split), saved with
``save_pretrained`` so that ``from_pretrained`` loads it like any GPT-2 folder.
Random weights: it learns in the generator stage (``rrg.freeze_generator: false``).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import torch

EOS = "<|endoftext|>"


def demo_corpus(images: pd.DataFrame, regions: pd.DataFrame) -> list[str]:
    """FINDINGS and region phrases of the training images, in a fixed order, blanks skipped."""
    for frame, name, columns in ((images, "images", ("dicom_id", "split", "findings")),
                                 (regions, "regions", ("dicom_id", "region_index", "phrase"))):
        missing = [c for c in columns if c not in frame.columns]
        if missing:
            raise ValueError(f"{name} table lacks column(s) {missing}")
    train = images[images["split"] == "train"].sort_values("dicom_id")
    phrases = regions[regions["dicom_id"].isin(set(train["dicom_id"]))].sort_values(["dicom_id", "region_index"])
    texts = [str(t).strip() for t in list(train["findings"].fillna("")) + list(phrases["phrase"].fillna(""))]
    texts = [t for t in texts if t]
    if not texts:
        raise ValueError("the demo corpus is empty: no FINDINGS or phrases in the training split")
    return texts


def train_tokenizer(texts: list[str], vocab_size: int):
    """A byte-level BPE (GPT-2's scheme) trained with ``tokenizers``; returns a GPT2TokenizerFast."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import GPT2TokenizerFast

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=[EOS], show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tokenizer.train_from_iterator(texts, trainer=trainer)
    return GPT2TokenizerFast(tokenizer_object=tokenizer, bos_token=EOS, eos_token=EOS, unk_token=EOS,
                             pad_token=EOS)


def build_demo_gpt2(texts: list[str], *, vocab_size: int, n_layer: int, n_embd: int, n_head: int,
                    n_positions: int = 256, seed: int = 0):
    """(model, tokenizer): GPT-2 of the given size, random weights seeded by ``seed``."""
    from transformers import GPT2Config, GPT2LMHeadModel

    tokenizer = train_tokenizer(texts, vocab_size)
    eos = tokenizer.eos_token_id
    config = GPT2Config(vocab_size=len(tokenizer), n_positions=n_positions, n_embd=n_embd, n_layer=n_layer,
                        n_head=n_head, bos_token_id=eos, eos_token_id=eos, pad_token_id=eos)
    torch.manual_seed(seed)
    model = GPT2LMHeadModel(config)
    return model, tokenizer


def save_demo_gpt2(folder: Path | str, model, tokenizer) -> None:
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
