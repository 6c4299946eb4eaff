"""Word vocabulary of the report-level baselines (S&T, AdaAtt), as R2Gen builds it.

Words and punctuation marks are tokens; a token seen fewer than ``min_count`` times in the
training reports becomes ``<unk>`` (R2Gen's MIMIC-CXR threshold is 10). Case is kept,
because the paper's metric tokenisation (``rgrg``) does not lower-case the references.

Targets follow the project's convention (``models.generator.encode_sentences``):
``<eos> words <eos>``, the first ``<eos>`` being the BOS.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path

PAD, EOS, UNK = "<pad>", "<eos>", "<unk>"
SPECIALS = (PAD, EOS, UNK)
# a word (inner '.', '-', '/' or apostrophe kept: "1.5", "x-ray", "AP/PA") or one punctuation mark
_TOKEN = re.compile(r"[A-Za-z0-9]+(?:['./\-][A-Za-z0-9]+)*|[^\sA-Za-z0-9]")
_SPACE_BEFORE = re.compile(r" ([.,;:!?%)\]])")
_SPACE_AFTER = re.compile(r"([(\[]) ")


def tokenize(text: str) -> list[str]:
    return _TOKEN.findall(str(text))


def detokenize(tokens: list[str]) -> str:
    text = " ".join(tokens)
    return _SPACE_AFTER.sub(r"\1", _SPACE_BEFORE.sub(r"\1", text))


class WordVocab:
    """Token <-> id; ids 0, 1, 2 are ``<pad>``, ``<eos>`` (also the BOS) and ``<unk>``."""

    def __init__(self, words: list[str]):
        if tuple(words[: len(SPECIALS)]) != SPECIALS:
            raise ValueError(f"a vocabulary starts with {SPECIALS}")
        self.words = list(words)
        self.index = {w: i for i, w in enumerate(self.words)}
        if len(self.index) != len(self.words):
            raise ValueError("duplicate words in the vocabulary")

    pad_id, eos_id, unk_id = 0, 1, 2

    def __len__(self) -> int:
        return len(self.words)

    @classmethod
    def build(cls, texts: list[str], min_count: int) -> "WordVocab":
        """Tokens of ``texts`` seen at least ``min_count`` times, most frequent first (ties alphabetical)."""
        counts = Counter(token for text in texts for token in tokenize(text))
        kept = sorted((t for t, c in counts.items() if c >= min_count and t not in SPECIALS),
                      key=lambda t: (-counts[t], t))
        return cls([*SPECIALS, *kept])

    def encode(self, text: str) -> list[int]:
        return [self.index.get(t, self.unk_id) for t in tokenize(text)]

    def targets(self, texts: list[str], max_length: int) -> list[list[int]]:
        """``<eos> ids <eos>`` per text, cut so that at most ``max_length`` tokens follow the BOS."""
        if max_length < 2:
            raise ValueError("max_length must leave room for one word and <eos>")
        return [[self.eos_id, *self.encode(t)[: max_length - 1], self.eos_id] for t in texts]

    def decode(self, ids: list[int]) -> str:
        """Ids after the BOS -> text, cut at the first ``<eos>``; ``<pad>``/``<unk>`` dropped."""
        words = []
        for i in ids:
            if i == self.eos_id:
                break
            if i not in (self.pad_id, self.unk_id):
                words.append(self.words[i])
        return detokenize(words)

    def save(self, path: Path | str) -> None:
        Path(path).write_text(json.dumps({"words": self.words}, indent=0) + "\n")

    @classmethod
    def load(cls, path: Path | str) -> "WordVocab":
        return cls(json.loads(Path(path).read_text())["words"])
