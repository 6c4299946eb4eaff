"""Region-conditioned sentence generator: GPT-2 with pseudo self-attention.

Each region feature becomes ONE extra key and value per GPT-2 layer (a learned feature
MLP, then per-layer ``uk``/``uv`` projections). They reach GPT-2 through its own cache
mechanism: a ``DynamicCache`` pre-filled with a length-1 prefix per layer, so every token
attends to the region as if it were an earlier token, while GPT-2 itself is transformers'
``GPT2LMHeadModel`` unchanged. The prefix is not a position: token ``position_ids`` start
at 0 and are always passed explicitly (GPT-2 would otherwise start at the cache length);
the attention mask covers prefix + tokens. Position embeddings come from GPT-2's ``wpe``.

Targets are ``<eos> sentence <eos>`` (GPT-2's BOS is its EOS token); the loss covers the
sentence tokens and the closing ``<eos>``.

Letters: B batch (regions), D region feature, H conditioning hidden, L layers,
N heads, E head dim, T tokens, V vocabulary.
"""

from __future__ import annotations

import inspect
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from safetensors.torch import save_file
from torch import nn
from torch.nn import functional as F

from crrg_clip import modelio

CONDITIONING_FILE = "conditioning.safetensors"
GPT2_DIR = "gpt2"
IGNORE_INDEX = -100


def _cache_argument_name(model: nn.Module) -> str:
    """GPT-2's name for the cache argument: ``cache`` (transformers >= 5.2x) or ``past_key_values``."""
    parameters = inspect.signature(type(model).forward).parameters
    return "cache" if "cache" in parameters else "past_key_values"


@dataclass
class ConditioningConfig:
    feature_dim: int  # D: the selector's projected region feature
    hidden_dim: int  # H: the feature MLP's width (paper 1024)
    n_layer: int
    n_head: int
    n_embd: int

    @property
    def head_dim(self) -> int:
        return self.n_embd // self.n_head


class PseudoSelfAttentionConditioning(nn.Module):
    """Region feature -> one (key, value) per GPT-2 layer, shaped like GPT-2's own cache."""

    def __init__(self, config: ConditioningConfig):
        super().__init__()
        if config.n_embd % config.n_head:
            raise ValueError(f"n_embd {config.n_embd} is not divisible by n_head {config.n_head}")
        self.config = config
        self.mlp = nn.Sequential(
            nn.Linear(config.feature_dim, config.hidden_dim),
            nn.ReLU(),
            nn.Linear(config.hidden_dim, config.hidden_dim),
        )
        self.uk = nn.ModuleList(nn.Linear(config.hidden_dim, config.n_embd) for _ in range(config.n_layer))
        self.uv = nn.ModuleList(nn.Linear(config.hidden_dim, config.n_embd) for _ in range(config.n_layer))

    def forward(self, features: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """features (B, D) -> per layer (key, value), each (B, N, 1, E)."""
        hidden = self.mlp(features)  # (B, H)
        shape = (features.shape[0], self.config.n_head, 1, self.config.head_dim)
        return [(uk(hidden).view(shape), uv(hidden).view(shape)) for uk, uv in zip(self.uk, self.uv)]


class LanguageModelLoss(nn.Module):
    """Next-token cross-entropy over labelled positions; returns ``{"lm": loss}``."""

    def forward(self, logits: torch.Tensor, labels: torch.Tensor) -> dict[str, torch.Tensor]:
        # logits (B, T, V), labels (B, T): the logit at t predicts the label at t + 1
        shifted = logits[:, :-1].float()  # (B, T-1, V)
        target = labels[:, 1:]  # (B, T-1)
        loss = F.cross_entropy(shifted.reshape(-1, shifted.shape[-1]), target.reshape(-1),
                               ignore_index=IGNORE_INDEX)
        return {"lm": loss}


def encode_sentences(tokenizer, sentences: list[str], max_tokens: int) -> list[list[int]]:
    """Token ids of ``<eos> sentence <eos>``, the sentence cut to fit ``max_tokens`` in all."""
    if max_tokens < 3:
        raise ValueError("max_tokens must leave room for <eos> sentence <eos>")
    eos = tokenizer.eos_token_id
    encoded = tokenizer(list(sentences), add_special_tokens=False)["input_ids"]
    return [[eos, *ids[: max_tokens - 2], eos] for ids in encoded]


def collate_targets(sequences: list[list[int]], pad_id: int) -> dict[str, torch.Tensor]:
    """Right-padded ``input_ids``, ``attention_mask`` (tokens only) and ``labels``.

    Padding is ``pad_id`` in the inputs and -100 in the labels; because GPT-2 pads with its
    EOS id, the mask comes from the lengths, never from comparing ids with ``pad_id``.
    The first ``<eos>`` is the BOS: it is the input of the first prediction, never a target.
    """
    longest = max(len(s) for s in sequences)
    input_ids = torch.full((len(sequences), longest), pad_id, dtype=torch.long)  # (B, T)
    attention = torch.zeros((len(sequences), longest), dtype=torch.long)  # (B, T)
    for i, sequence in enumerate(sequences):
        input_ids[i, : len(sequence)] = torch.tensor(sequence, dtype=torch.long)
        attention[i, : len(sequence)] = 1
    labels = input_ids.masked_fill(attention == 0, IGNORE_INDEX)
    labels[:, 0] = IGNORE_INDEX
    return {"input_ids": input_ids, "attention_mask": attention, "labels": labels}


class RegionGenerator(nn.Module):
    """``GPT2LMHeadModel`` + pseudo self-attention conditioning on one region feature."""

    def __init__(self, gpt2: nn.Module, conditioning: PseudoSelfAttentionConditioning, tokenizer=None):
        super().__init__()
        config = gpt2.config
        if (config.n_layer, config.n_head, config.n_embd) != (
                conditioning.config.n_layer, conditioning.config.n_head, conditioning.config.n_embd):
            raise ValueError("conditioning and GPT-2 disagree on n_layer / n_head / n_embd")
        self.gpt2 = gpt2
        self.conditioning = conditioning
        self.tokenizer = tokenizer
        self._cache_arg = _cache_argument_name(gpt2)

    def save_pretrained(self, folder: Path | str, extra: dict | None = None) -> None:
        """HF ``save_pretrained`` files of GPT-2 (+ tokenizer) in ``gpt2/``, conditioning weights + config.json.

        The config records no ``kind`` (folders predate it; adding one would change them)."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        self.gpt2.save_pretrained(folder / GPT2_DIR)
        if self.tokenizer is not None:
            self.tokenizer.save_pretrained(folder / GPT2_DIR)
        save_file(modelio.state_for_saving(self.conditioning), str(folder / CONDITIONING_FILE))
        modelio.write_config(folder, {"conditioning": asdict(self.conditioning.config), "gpt2": GPT2_DIR,
                                      "eos_token_id": self.eos_token_id, **(extra or {})})

    @classmethod
    def from_pretrained(cls, folder: Path | str, device: torch.device | str = "cpu") -> "RegionGenerator":
        """The inverse of ``save_pretrained``, in eval mode; nothing is unpickled."""
        from transformers import AutoTokenizer, GPT2LMHeadModel

        folder = Path(folder)
        config = modelio.read_config(folder, None)
        gpt2 = GPT2LMHeadModel.from_pretrained(folder / config["gpt2"])
        tokenizer = AutoTokenizer.from_pretrained(folder / config["gpt2"])
        conditioning = PseudoSelfAttentionConditioning(ConditioningConfig(**config["conditioning"]))
        conditioning.load_state_dict(modelio.read_weights(folder, name=CONDITIONING_FILE))
        generator = cls(gpt2, conditioning, tokenizer)
        # what the conditioning reads (train.generator.GENERATOR_INPUTS); older folders: the selector's
        generator.input_kind = config.get("input", "selector_projection")
        return modelio.finish_loading(generator, config, device)

    @property
    def eos_token_id(self) -> int:
        return int(self.gpt2.config.eos_token_id)

    def freeze_gpt2(self, frozen: bool = True) -> None:
        self.gpt2.requires_grad_(not frozen)

    def prefix_cache(self, features: torch.Tensor, repeat: int = 1):
        """The region prefix as GPT-2's own cache: per layer key/value (B * repeat, N, 1, E).

        ``repeat`` interleaves copies per item, the order ``generate`` uses to expand a
        batch to ``num_beams`` hypotheses (item 0's beams first).
        """
        from transformers import DynamicCache

        if repeat > 1:
            features = features.repeat_interleave(repeat, dim=0)  # (B * repeat, D)
        cache = DynamicCache(config=self.gpt2.config)
        dtype = self.gpt2.get_input_embeddings().weight.dtype
        for layer, (key, value) in enumerate(self.conditioning(features)):
            cache.update(key.to(dtype), value.to(dtype), layer)
        return cache

    def forward(self, features: torch.Tensor, input_ids: torch.Tensor,
                attention_mask: torch.Tensor) -> torch.Tensor:
        """features (B, D), input_ids / attention_mask (B, T) -> logits (B, T, V)."""
        batch, length = input_ids.shape
        cache = self.prefix_cache(features)
        prefix = torch.ones((batch, 1), dtype=attention_mask.dtype, device=attention_mask.device)
        mask = torch.cat([prefix, attention_mask], dim=1)  # (B, 1 + T)
        positions = torch.arange(length, device=input_ids.device).unsqueeze(0).expand(batch, -1)  # (B, T)
        output = self.gpt2(input_ids=input_ids, attention_mask=mask, position_ids=positions,
                           use_cache=True, **{self._cache_arg: cache})
        return output.logits

    @torch.no_grad()
    def generate(self, features: torch.Tensor, *, num_beams: int = 1, max_new_tokens: int = 40) -> torch.Tensor:
        """features (B, D) -> generated ids (B, S) after the BOS, EOS/pad after the end.

        Uses transformers' ``generate`` with the prefix cache. Two details make the cache
        fit: (1) ``generate`` expands tensors for beams but not a user cache, so the cache
        is built already interleaved to B * num_beams rows (beam search then reorders it
        with the cache's own ``reorder_cache``); (2) the inputs start with a placeholder
        token standing for the prefix slot, so that input length == attention-mask length
        == cache length + 1 and ``generate`` feeds only the BOS in the first step (also
        with the older cache-position slicing). Position ids are explicit and start at 0
        for the BOS; ``generate`` extends them by one per step.
        """
        output = self.generate_output(features, num_beams=num_beams, max_new_tokens=max_new_tokens)
        sequences = output if isinstance(output, torch.Tensor) else output.sequences
        return sequences[:, 2:]

    @torch.no_grad()
    def generate_output(self, features: torch.Tensor, *, num_beams: int, max_new_tokens: int, **kwargs):
        """transformers' ``generate`` output as is; its sequences start with (placeholder, BOS)."""
        batch = features.shape[0]
        eos = self.eos_token_id
        device = features.device
        cache = self.prefix_cache(features, repeat=num_beams)
        input_ids = torch.full((batch, 2), eos, dtype=torch.long, device=device)  # placeholder, BOS
        attention_mask = torch.ones((batch, 2), dtype=torch.long, device=device)  # prefix, BOS
        position_ids = torch.zeros((batch, 2), dtype=torch.long, device=device)  # the BOS is position 0
        return self.gpt2.generate(
            input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids,
            num_beams=num_beams, max_new_tokens=max_new_tokens, do_sample=False,
            eos_token_id=eos, pad_token_id=eos, bos_token_id=eos, use_cache=True,
            num_return_sequences=1, **{self._cache_arg: cache}, **kwargs,
        )

    def decode(self, ids: torch.Tensor) -> list[str]:
        """Generated ids -> sentences, cut at the first EOS."""
        if self.tokenizer is None:
            raise ValueError("decode needs the generator's tokenizer")
        eos = self.eos_token_id
        texts = []
        for row in ids.tolist():
            if eos in row:
                row = row[: row.index(eos)]
            texts.append(" ".join(self.tokenizer.decode(row, skip_special_tokens=True).split()))
        return texts

    def generate_sentences(self, features: torch.Tensor, *, num_beams: int, max_new_tokens: int) -> list[str]:
        return self.decode(self.generate(features, num_beams=num_beams, max_new_tokens=max_new_tokens))


def build_generator(gpt2_source: str, *, feature_dim: int, hidden_dim: int = 1024,
                    device: torch.device | str = "cpu") -> RegionGenerator:
    """GPT-2 + tokenizer from a local folder (``from_pretrained``, offline) and a fresh conditioning."""
    from transformers import AutoTokenizer, GPT2LMHeadModel

    gpt2 = GPT2LMHeadModel.from_pretrained(gpt2_source)
    tokenizer = AutoTokenizer.from_pretrained(gpt2_source)
    if tokenizer.eos_token_id is None:
        raise ValueError(f"{gpt2_source}: the tokenizer has no EOS token")
    if gpt2.config.eos_token_id is None:
        gpt2.config.eos_token_id = tokenizer.eos_token_id
    config = ConditioningConfig(feature_dim=feature_dim, hidden_dim=hidden_dim, n_layer=gpt2.config.n_layer,
                                n_head=gpt2.config.n_head, n_embd=gpt2.config.n_embd)
    return RegionGenerator(gpt2, PseudoSelfAttentionConditioning(config), tokenizer).to(device)
