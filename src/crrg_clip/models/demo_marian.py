"""The demo's Marian pair (en -> it, it -> en): real MarianMTModel classes, small configs.

No hub, no downloads: the "Italian" side is a deterministic word-level pseudo-language
made from the English demo corpus (each English word -> a made-up word of Italian-looking
syllables; punctuation, digits and spacing kept), so a parallel corpus exists for free and
the reverse direction maps back. Both models are trained briefly on it. Trained on
sentences (``unit="sentence"``, the demo's setting) the round trip returns the demo's
sentences essentially unchanged (a faithful paraphrase of zero edits: the demo's texts keep
their findings, not the real models' rewording); a model this small trained on whole reports
learns the commonest report instead, so the demo translates sentence by sentence.

Folders written (each loadable with MarianMTModel / MarianTokenizer.from_pretrained):
``source.spm``, ``target.spm`` (SentencePiece unigram models trained on each side),
``vocab.json`` (one joint vocabulary: ``</s>`` = 0, ``<unk>`` = 1, pieces, ``<pad>`` last,
the layout of the opus-mt models), ``tokenizer_config.json``, ``config.json``,
``generation_config.json``, ``model.safetensors`` and ``lexicon.json`` (the word map).

Letters: B batch, S source tokens, T target tokens.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import sentencepiece as spm
import torch

from crrg_clip.backtranslate import split_sentences
from crrg_clip.runtime import seed_everything

log = logging.getLogger(__name__)

_WORD = re.compile(r"[^\W\d_]+")
_CONSONANTS = "bcdfglmnprstvz"
_VOWELS = "aeiou"

DEFAULT_MARIAN = {
    "encoder_layers": 1, "decoder_layers": 1, "d_model": 64,
    "encoder_attention_heads": 2, "decoder_attention_heads": 2,
    "encoder_ffn_dim": 128, "decoder_ffn_dim": 128,
}


# --- the pseudo-language -------------------------------------------------------------

def _pseudo_word(word: str, salt: int) -> str:
    """A made-up, Italian-looking word for ``word``: consonant-vowel syllables from a hash."""
    digest = hashlib.sha256(f"{word}|{salt}".encode()).digest()
    n_syllables = max(1, min(4, (len(word) + 2) // 3)) + (1 if salt else 0)
    return "".join(_CONSONANTS[digest[2 * i] % len(_CONSONANTS)] + _VOWELS[digest[2 * i + 1] % len(_VOWELS)]
                   for i in range(n_syllables))


def build_lexicon(texts: Iterable[str]) -> dict[str, str]:
    """A one-to-one map from every lower-cased English word of ``texts`` to a made-up word.

    Deterministic: words are handled in sorted order; a collision (with an earlier made-up
    word or with an English word) is resolved by re-hashing with a salt.
    """
    words = sorted({w.lower() for text in texts for w in _WORD.findall(text)})
    english = set(words)
    lexicon: dict[str, str] = {}
    used: set[str] = set()
    for word in words:
        salt = 0
        pseudo = _pseudo_word(word, salt)
        while pseudo in used or pseudo in english:
            salt += 1
            pseudo = _pseudo_word(word, salt)
        lexicon[word] = pseudo
        used.add(pseudo)
    return lexicon


def _match_case(source: str, target: str) -> str:
    if len(source) > 1 and source.isupper():
        return target.upper()
    if source[:1].isupper():
        return target[:1].upper() + target[1:]
    return target


def apply_lexicon(text: str, lexicon: dict[str, str]) -> str:
    """Map each word through ``lexicon`` keeping its case; unknown words, digits and
    punctuation stay as they are."""
    def swap(match: re.Match) -> str:
        word = match.group(0)
        mapped = lexicon.get(word.lower())
        return word if mapped is None else _match_case(word, mapped)
    return _WORD.sub(swap, text)


def invert_lexicon(lexicon: dict[str, str]) -> dict[str, str]:
    inverse = {v: k for k, v in lexicon.items()}
    if len(inverse) != len(lexicon):
        raise ValueError("lexicon is not one-to-one: it cannot be inverted")
    return inverse


def training_segments(texts: Iterable[str], unit: str = "report") -> list[str]:
    """Unique, non-empty training segments: each sentence of every text, and with
    ``unit="report"`` every whole text too (what back-translation will be asked for)."""
    segments: dict[str, None] = {}
    for text in texts:
        text = " ".join(str(text).split())
        if not text:
            continue
        if unit == "report":
            segments[text] = None
        for sentence in split_sentences(text):  # the split back-translation will make
            segments[sentence] = None
    return list(segments)


# --- tokenizer files -----------------------------------------------------------------

def train_sentencepiece(lines: list[str], vocab_size: int) -> bytes:
    """A unigram SentencePiece model (serialised bytes) trained on ``lines`` (one thread: deterministic)."""
    model = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(lines), model_writer=model, vocab_size=vocab_size,
        model_type="unigram", hard_vocab_limit=False, character_coverage=1.0,
        unk_id=0, bos_id=1, eos_id=2, pad_id=-1, num_threads=1,
        minloglevel=2,
    )
    return model.getvalue()


def _pieces(model_bytes: bytes) -> list[str]:
    processor = spm.SentencePieceProcessor(model_proto=model_bytes)
    return [processor.id_to_piece(i) for i in range(processor.get_piece_size())
            if not (processor.is_control(i) or processor.is_unknown(i))]


def joint_vocab(*models: bytes) -> dict[str, int]:
    """The opus-mt layout: ``</s>`` 0, ``<unk>`` 1, the pieces of every model, ``<pad>`` last."""
    vocab = {"</s>": 0, "<unk>": 1}
    for model_bytes in models:
        for piece in _pieces(model_bytes):
            vocab.setdefault(piece, len(vocab))
    vocab["<pad>"] = len(vocab)
    return vocab


def write_tokenizer_folder(folder: Path | str, source_spm: bytes, target_spm: bytes,
                           vocab: dict[str, int], source_lang: str, target_lang: str,
                           model_max_length: int = 512) -> None:
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "source.spm").write_bytes(source_spm)
    (folder / "target.spm").write_bytes(target_spm)
    (folder / "vocab.json").write_text(json.dumps(vocab, indent=1, ensure_ascii=False) + "\n")
    tokenizer_config = {
        "tokenizer_class": "MarianTokenizer", "source_lang": source_lang, "target_lang": target_lang,
        "unk_token": "<unk>", "eos_token": "</s>", "pad_token": "<pad>",
        "model_max_length": model_max_length, "separate_vocabs": False,
    }
    (folder / "tokenizer_config.json").write_text(json.dumps(tokenizer_config, indent=2) + "\n")


# --- model ---------------------------------------------------------------------------

def marian_config(vocab_size: int, sizes: dict, max_positions: int = 256):
    """A MarianConfig in the opus-mt layout (eos 0, pad = decoder start = last id)."""
    from transformers import MarianConfig

    unknown = set(sizes) - set(DEFAULT_MARIAN)
    if unknown:
        raise ValueError(f"demo_models.marian: unknown key(s) {sorted(unknown)}; known: {sorted(DEFAULT_MARIAN)}")
    pad = vocab_size - 1
    return MarianConfig(
        vocab_size=vocab_size, decoder_vocab_size=vocab_size, pad_token_id=pad,
        decoder_start_token_id=pad, eos_token_id=0, forced_eos_token_id=0,
        max_position_embeddings=max_positions, activation_function="swish",
        scale_embedding=True, share_encoder_decoder_embeddings=True, tie_word_embeddings=True,
        dropout=0.0, attention_dropout=0.0, activation_dropout=0.0,
        **{**DEFAULT_MARIAN, **sizes},
    )


@dataclass
class TrainResult:
    steps: int
    first_loss: float
    last_loss: float
    seconds: float


def train_marian(model, tokenizer, sources: list[str], targets: list[str], *, steps: int,
                 batch_size: int, lr: float, seed: int, max_length: int) -> TrainResult:
    """A short AdamW run on (source, target) pairs, batches drawn with a seeded generator."""
    if len(sources) != len(targets) or not sources:
        raise ValueError("train_marian: sources and targets must be non-empty and the same length")
    start = time.perf_counter()
    generator = torch.Generator().manual_seed(seed)
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.0)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: min(1.0, (s + 1) / max(1, steps // 10)) * max(0.05, 1 - s / max(1, steps)))
    model.train()
    first = last = float("nan")
    for step in range(steps):
        idx = torch.randint(len(sources), (min(batch_size, len(sources)),), generator=generator).tolist()
        batch = tokenizer([sources[i] for i in idx], text_target=[targets[i] for i in idx],
                          padding=True, truncation=True, max_length=max_length, return_tensors="pt")
        labels = batch["labels"]  # (B, T)
        labels = labels.masked_fill(labels == tokenizer.pad_token_id, -100)
        loss = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], labels=labels).loss
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        schedule.step()
        last = float(loss.detach())
        if step == 0:
            first = last
        if step % 50 == 0 or step == steps - 1:
            log.info("step %d/%d loss %.4f", step + 1, steps, last)
    model.eval()
    return TrainResult(steps=steps, first_loss=first, last_loss=last, seconds=time.perf_counter() - start)


def build_demo_marian_pair(texts: Iterable[str], en_it_dir: Path | str, it_en_dir: Path | str, *,
                           vocab_size: int, sizes: dict, train_steps: int, seed: int,
                           batch_size: int = 32, lr: float = 3e-3, max_length: int = 128,
                           lexicon: dict[str, str] | None = None, unit: str = "report") -> dict:
    """Build and briefly train the demo's en -> it and it -> en models; return a summary.

    ``texts`` is the English corpus (the demo's training FINDINGS); ``lexicon`` defaults to
    ``build_lexicon(texts)``; ``unit`` is the back-translation unit the pair is trained for
    (``sentence``: sentences only, short and quick to learn; ``report``: texts too).
    """
    from transformers import GenerationConfig, MarianMTModel, MarianTokenizer

    english = training_segments(texts, unit)
    if not english:
        raise ValueError("build_demo_marian_pair: the corpus has no non-empty text")
    lexicon = lexicon if lexicon is not None else build_lexicon(english)
    italian = [apply_lexicon(t, lexicon) for t in english]

    half = max(50, vocab_size // 2)
    en_spm = train_sentencepiece(english, half)
    it_spm = train_sentencepiece(italian, half)
    vocab = joint_vocab(en_spm, it_spm)

    summary = {"unit": unit, "segments": len(english), "lexicon_size": len(lexicon), "vocab_size": len(vocab), "models": {}}
    for name, folder, src_spm, tgt_spm, src, tgt, langs, lex in (
        ("en_it", Path(en_it_dir), en_spm, it_spm, english, italian, ("en", "it"), lexicon),
        ("it_en", Path(it_en_dir), it_spm, en_spm, italian, english, ("it", "en"), invert_lexicon(lexicon)),
    ):
        write_tokenizer_folder(folder, src_spm, tgt_spm, vocab, *langs, model_max_length=max_length)
        tokenizer = MarianTokenizer.from_pretrained(str(folder))
        seed_everything(seed)
        model = MarianMTModel(marian_config(len(vocab), sizes, max_positions=max(256, max_length)))
        result = train_marian(model, tokenizer, src, tgt, steps=train_steps, batch_size=batch_size,
                              lr=lr, seed=seed, max_length=max_length)
        model.generation_config = GenerationConfig(
            decoder_start_token_id=model.config.decoder_start_token_id, eos_token_id=0,
            pad_token_id=model.config.pad_token_id, forced_eos_token_id=0,
            bad_words_ids=[[model.config.pad_token_id]], max_length=max_length, num_beams=1)
        model.save_pretrained(str(folder))
        (folder / "lexicon.json").write_text(json.dumps(lex, indent=1, sort_keys=True) + "\n")
        summary["models"][name] = {"folder": str(folder), "steps": result.steps, "first_loss": result.first_loss,
                                   "last_loss": result.last_loss, "seconds": round(result.seconds, 2)}
        log.info("%s: loss %.3f -> %.3f in %.1f s", name, result.first_loss, result.last_loss, result.seconds)
    return summary
