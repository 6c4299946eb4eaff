"""The demo text encoder: a small ``BertModel`` and a WordPiece tokenizer trained on the demo corpus.

The real configuration names ``emilyalsentzer/Bio_ClinicalBERT`` (cased BERT-base); the
demo builds the same classes from a small config so the workflow runs with no model hub.
The tokenizer is cased like Bio_ClinicalBERT: BERT normalisation without lower-casing,
BERT pre-tokenisation, ``[CLS] text [SEP]`` post-processing. The model's weights are a
seeded random initialisation (it learns during CLIP training).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import torch

SPECIAL_TOKENS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


def train_wordpiece_tokenizer(texts: Iterable[str], vocab_size: int, max_length: int = 512):
    """A ``BertTokenizerFast`` whose WordPiece vocabulary is learnt from ``texts``.

    The vocabulary is built deterministically: every character (and its ``##`` continuation)
    so that any word can be spelled, then whole words by frequency (ties by spelling) up to
    ``vocab_size``. The ``tokenizers`` WordPiece trainer was not used: it breaks ties between
    equally frequent merges in hash-map order, so two runs learnt different vocabularies.
    """
    from collections import Counter

    from tokenizers import normalizers, pre_tokenizers

    texts = [t for t in texts if isinstance(t, str) and t.strip()]
    if not texts:
        raise ValueError("demo BERT: the tokenizer corpus is empty")
    normalizer = normalizers.BertNormalizer(lowercase=False, strip_accents=False)
    splitter = pre_tokenizers.BertPreTokenizer()
    words = Counter(w for t in texts for w, _ in splitter.pre_tokenize_str(normalizer.normalize_str(t)))
    chars = sorted({c for w in words for c in w})
    alphabet = chars + [f"##{c}" for c in chars]
    budget = max(0, vocab_size - len(SPECIAL_TOKENS) - len(alphabet))
    ranked = sorted((w for w in words if len(w) > 1), key=lambda w: (-words[w], w))[:budget]
    return tokenizer_from_vocab(list(SPECIAL_TOKENS) + alphabet + sorted(ranked), max_length)


def tokenizer_from_vocab(vocab: list[str], max_length: int = 512):
    """A cased ``BertTokenizerFast`` over a given WordPiece vocabulary (ids in list order)."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers

    missing = [t for t in SPECIAL_TOKENS if t not in vocab]
    if missing:
        raise ValueError(f"vocabulary lacks the special token(s) {missing}")
    tokenizer = Tokenizer(models.WordPiece(vocab={t: i for i, t in enumerate(vocab)}, unk_token="[UNK]"))
    tokenizer.normalizer = normalizers.BertNormalizer(lowercase=False, strip_accents=False)
    tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    return wrap_wordpiece(tokenizer, max_length)


def wrap_wordpiece(tokenizer, max_length: int):
    """Add BERT's ``[CLS] ... [SEP]`` template and decoder; wrap as ``BertTokenizerFast``."""
    from tokenizers import decoders, processors
    from transformers import BertTokenizerFast

    cls_id, sep_id = tokenizer.token_to_id("[CLS]"), tokenizer.token_to_id("[SEP]")
    tokenizer.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", cls_id), ("[SEP]", sep_id)],
    )
    tokenizer.decoder = decoders.WordPiece(prefix="##")
    return BertTokenizerFast(
        tokenizer_object=tokenizer, do_lower_case=False, unk_token="[UNK]", sep_token="[SEP]",
        pad_token="[PAD]", cls_token="[CLS]", mask_token="[MASK]", model_max_length=max_length,
    )


def build_demo_bert(texts: Iterable[str], out_dir: str | Path, *, vocab_size: int, bert: dict,
                    seed: int = 0, max_position_embeddings: int = 512) -> None:
    """Train the tokenizer, build a seeded random ``BertModel`` of config ``bert``, save both."""
    from transformers import BertConfig, BertModel

    tokenizer = train_wordpiece_tokenizer(texts, vocab_size, max_length=max_position_embeddings)
    config = BertConfig(vocab_size=len(tokenizer), max_position_embeddings=max_position_embeddings,
                        pad_token_id=tokenizer.pad_token_id, **bert)
    torch.manual_seed(seed)
    model = BertModel(config, add_pooling_layer=False)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(out_dir))
    tokenizer.save_pretrained(str(out_dir))
