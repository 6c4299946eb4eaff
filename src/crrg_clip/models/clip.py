"""R-CLIP: a ResNet image encoder and a BERT text encoder joined by linear projections.

Letters: ``B`` batch, ``C`` channels, ``H``/``W`` image side, ``T`` tokens, ``F`` pooled
image features (2048 for ResNet-50), ``E`` BERT hidden size, ``P`` projection size.

- Image: a torchvision ResNet without its classifier; a greyscale image is replicated to
  three channels so ImageNet weights apply unchanged; global-average-pooled features.
- Text: ``transformers.BertModel``; the sentence embedding is the hidden state at the
  ``[SEP]`` token (the last token of a single-sequence BERT input).
- Both go through a ``Linear`` to ``P`` and are L2-normalised.
- Temperature: learnable, stored as ``logit_scale = log(1 / T)`` and clamped to
  ``[0, log(100)]`` when used (T between 0.01 and 1).

A saved model is a folder: ``config.json`` (architecture, BERT config as a dict,
projection size, ...) + ``model.safetensors`` (every weight, text encoder included) +
``tokenizer/`` (``save_pretrained`` files). ``CLIPModel.from_pretrained`` builds the modules
from the config and reads the weights (the temperature too); nothing is unpickled.
"""

from __future__ import annotations

import math
from pathlib import Path

import torch
import torchvision
from torch import nn
from torch.nn import functional as F

from .. import modelio

KIND = "rclip"
TOKENIZER_DIR = "tokenizer"
RESNETS = {"resnet18": 512, "resnet34": 512, "resnet50": 2048}
MAX_LOGIT_SCALE = math.log(100.0)


class ImageEncoder(nn.Module):
    """Greyscale image (B, 1, H, W) -> pooled ResNet features (B, F)."""

    def __init__(self, arch: str = "resnet50", weights_path: str | Path | None = None):
        super().__init__()
        if arch not in RESNETS:
            raise ValueError(f"image encoder {arch!r}: expected one of {sorted(RESNETS)}")
        resnet = getattr(torchvision.models, arch)(weights=None)
        if weights_path:
            path = Path(weights_path)
            if not path.is_file():
                raise FileNotFoundError(f"{path}: ImageNet weights for {arch} not found (rclip.image_weights)")
            # a plain torchvision state dict; weights_only refuses anything but tensors
            state = torch.load(path, map_location="cpu", weights_only=True)
            try:
                missing, unexpected = resnet.load_state_dict(state, strict=False)
            except RuntimeError as error:  # tensor shapes of another architecture
                raise ValueError(f"{path}: not a torchvision {arch} state dict ({str(error)[:200]})") from None
            trunk_missing = [k for k in missing if not k.startswith("fc.")]
            if trunk_missing or unexpected:
                raise ValueError(f"{path}: not a torchvision {arch} state dict "
                                 f"(missing {trunk_missing[:3]}, unexpected {list(unexpected)[:3]})")
        resnet.fc = nn.Identity()
        self.trunk = resnet
        self.arch = arch
        self.feature_dim = RESNETS[arch]

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        if images.dim() != 4 or images.shape[1] not in (1, 3):
            raise ValueError(f"images: expected (B, 1, H, W), got {tuple(images.shape)}")
        if images.shape[1] == 1:
            images = images.expand(-1, 3, -1, -1)  # (B, 3, H, W)
        return self.trunk(images)  # (B, F)


def sep_positions(input_ids: torch.Tensor, sep_token_id: int) -> torch.Tensor:
    """Index of the first [SEP] in each row of (B, T) token ids -> (B,)."""
    is_sep = input_ids == sep_token_id  # (B, T)
    if not bool(is_sep.any(dim=1).all()):
        rows = (~is_sep.any(dim=1)).nonzero().flatten().tolist()
        raise ValueError(f"text rows {rows[:5]} have no [SEP] token (id {sep_token_id})")
    return is_sep.int().argmax(dim=1)


class CLIPModel(nn.Module):
    """Image and text towers with projections and a learnable temperature."""

    def __init__(self, image_encoder: ImageEncoder, text_encoder: nn.Module, *, projection_dim: int,
                 temperature_init: float, sep_token_id: int, tokenizer=None):
        super().__init__()
        self.image_encoder = image_encoder
        self.text_encoder = text_encoder
        hidden = text_encoder.config.hidden_size
        self.image_projection = nn.Linear(image_encoder.feature_dim, projection_dim)
        self.text_projection = nn.Linear(hidden, projection_dim)
        self.logit_scale = nn.Parameter(torch.tensor(math.log(1.0 / temperature_init)))
        self.sep_token_id = int(sep_token_id)
        self.projection_dim = projection_dim
        self.tokenizer = tokenizer  # saved with the model; set by build_clip and from_pretrained

    @classmethod
    def from_config(cls, config: dict, image_encoder: ImageEncoder, text_encoder: nn.Module,
                    state: dict[str, torch.Tensor]) -> "CLIPModel":
        """The structure of a saved model; its weights (``state``) are loaded after."""
        return cls(image_encoder, text_encoder, projection_dim=config["projection_dim"],
                   temperature_init=saved_temperature(state), sep_token_id=config["sep_token_id"])

    def save_pretrained(self, folder: str | Path, extra: dict | None = None, tokenizer=None) -> None:
        tokenizer = tokenizer if tokenizer is not None else self.tokenizer
        if tokenizer is None:
            raise ValueError(f"{folder}: a CLIP model folder needs the tokenizer (none given or attached)")
        modelio.save_model_folder(folder, self, {
            "kind": KIND,
            "image_encoder": self.image_encoder.arch,
            "feature_dim": self.image_encoder.feature_dim,
            "projection_dim": self.projection_dim,
            "sep_token_id": self.sep_token_id,
            "text_config": self.text_encoder.config.to_dict(),
            **(extra or {}),
        })
        tokenizer.save_pretrained(str(Path(folder) / TOKENIZER_DIR))

    @classmethod
    def from_pretrained(cls, folder: str | Path, device: torch.device | str = "cpu") -> "CLIPModel":
        """The saved model in eval mode, ``tokenizer`` and ``folder_config`` attached.

        A ConVIRT folder (the same kind, config ``loss: convirt``) gives a ``ConVIRTModel``.
        """
        from transformers import AutoTokenizer, BertConfig, BertModel

        config = modelio.read_config(folder, KIND)
        model_cls = saved_model_class(config)
        if not issubclass(model_cls, cls):
            raise ValueError(f"{folder}: a {model_cls.__name__} folder, not a {cls.__name__} one")
        # built in the order of the old loader (text tower first): the same random-number use
        text_encoder = BertModel(BertConfig.from_dict(config["text_config"]), add_pooling_layer=False)
        image_encoder = ImageEncoder(config["image_encoder"])
        state = modelio.read_weights(folder, device)
        model = model_cls.from_config(config, image_encoder, text_encoder, state)
        model.load_state_dict(state)
        model.tokenizer = AutoTokenizer.from_pretrained(str(Path(folder) / TOKENIZER_DIR))
        return modelio.finish_loading(model, config, device)

    def scale(self) -> torch.Tensor:
        """exp(logit_scale) = 1 / T, clamped to [1, 100]."""
        return self.logit_scale.clamp(0.0, MAX_LOGIT_SCALE).exp()

    def encode_image(self, images: torch.Tensor) -> torch.Tensor:
        features = self.image_encoder(images)  # (B, F)
        return F.normalize(self.image_projection(features), dim=-1)  # (B, P)

    def encode_text(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        hidden = self.text_encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state  # (B, T, E)
        pos = sep_positions(input_ids, self.sep_token_id)  # (B,)
        pooled = hidden[torch.arange(hidden.shape[0], device=hidden.device), pos]  # (B, E)
        return F.normalize(self.text_projection(pooled), dim=-1)  # (B, P)

    def forward(self, image1, image2, text1: dict, text2: dict) -> dict[str, torch.Tensor]:
        """Embeddings of the two image views and the two texts, plus the logit scale."""
        # both image views go through the trunk together: one BatchNorm batch of 2B
        images = torch.cat([image1, image2], dim=0)  # (2B, 1, H, W)
        image_emb = self.encode_image(images)  # (2B, P)
        b = image1.shape[0]
        return {
            "image1": image_emb[:b], "image2": image_emb[b:],
            "text1": self.encode_text(text1["input_ids"], text1["attention_mask"]),
            "text2": self.encode_text(text2["input_ids"], text2["attention_mask"]),
            "logit_scale": self.scale(),
        }


def load_text_encoder(source: str | Path):
    """A BertModel (no pooler: we pool at [SEP]) and its fast tokenizer from a folder or hub id."""
    from transformers import AutoTokenizer, BertModel

    tokenizer = AutoTokenizer.from_pretrained(str(source))
    model = BertModel.from_pretrained(str(source), add_pooling_layer=False)
    if tokenizer.sep_token_id is None:
        raise ValueError(f"{source}: tokenizer has no [SEP] token")
    return model, tokenizer


def build_clip(*, image_encoder: str, image_weights: str | None, text_model: str | Path,
               projection_dim: int, temperature_init: float):
    """A fresh CLIP model (pretrained towers where given) and its tokenizer."""
    text_encoder, tokenizer = load_text_encoder(text_model)
    model = CLIPModel(ImageEncoder(image_encoder, image_weights), text_encoder,
                      projection_dim=projection_dim, temperature_init=temperature_init,
                      sep_token_id=tokenizer.sep_token_id, tokenizer=tokenizer)
    return model, tokenizer


def saved_temperature(state: dict[str, torch.Tensor]) -> float:
    """T of saved weights (``logit_scale = log(1 / T)``); loading the state then restores it exactly."""
    return math.exp(-float(state["logit_scale"]))


def saved_model_class(config: dict) -> type[CLIPModel]:
    if config.get("loss") == "convirt":
        from .convirt import ConVIRTModel  # convirt imports this module

        return ConVIRTModel
    return CLIPModel


def load_clip_image_encoder(folder: str | Path) -> ImageEncoder:
    """Only the image tower of a saved R-CLIP (or ConVIRT) model, in eval mode (the RSNA probe's)."""
    config = modelio.read_config(folder, KIND)
    encoder = ImageEncoder(config["image_encoder"])
    state = modelio.read_weights(folder)
    prefix = "image_encoder."
    encoder.load_state_dict({k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)})
    return encoder.eval()
