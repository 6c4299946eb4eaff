"""A trained model is a folder: config.json (with its ``kind``) + weights. Loading never unpickles.

This module is the one place that reads and writes a folder's config.json and checks its
kind. Every model class has ``save_pretrained(folder, extra=None)`` and the classmethod
``from_pretrained(folder, device)``, which returns the model in eval mode with the folder's
whole config.json attached as ``model.folder_config`` (``finish_loading``).
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from torch import nn

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"


class KindError(ValueError):
    """A model folder of another kind than the one asked for."""

    def __init__(self, folder: Path | str, found, expected):
        self.folder, self.found, self.expected = Path(folder), found, expected
        wanted = "no kind (a generator folder)" if expected is None else repr(expected)
        super().__init__(f"{folder}/{CONFIG_FILE}: kind {found!r}, expected {wanted}")


def write_config(folder: Path | str, config: dict) -> None:
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / CONFIG_FILE).write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")


def state_for_saving(module: nn.Module) -> dict[str, torch.Tensor]:
    # safetensors refuses shared storage; contiguous clones make every tensor its own
    return {k: v.detach().to("cpu").contiguous().clone() for k, v in module.state_dict().items()}


def save_model_folder(folder: Path | str, model: nn.Module, config: dict) -> None:
    write_config(folder, config)
    save_file(state_for_saving(model), str(Path(folder) / WEIGHTS_FILE))


def read_config(folder: Path | str, kind: str | tuple[str, ...] | None) -> dict:
    """config.json, checked to be of ``kind`` (one of them, for a tuple).

    ``kind=None`` is a format that records no kind (the generator's): a folder that has
    one is then of another kind.
    """
    path = Path(folder) / CONFIG_FILE
    if not path.exists():
        raise FileNotFoundError(f"{folder}: not a model folder (no {CONFIG_FILE})")
    config = json.loads(path.read_text())
    found = config.get("kind")
    accepted = kind if isinstance(kind, tuple) else (kind,)
    if found not in accepted:
        raise KindError(folder, found, kind)
    return config


def read_weights(folder: Path | str, device: torch.device | str = "cpu",
                 name: str = WEIGHTS_FILE) -> dict[str, torch.Tensor]:
    path = Path(folder) / name
    if not path.exists():
        raise FileNotFoundError(f"{folder}: no {name}")
    return load_file(str(path), device=str(device))


def load_weights(folder: Path | str, model: nn.Module, device: torch.device | str = "cpu") -> nn.Module:
    model.load_state_dict(read_weights(folder, device))
    return model


def finish_loading(model: nn.Module, config: dict, device: torch.device | str = "cpu") -> nn.Module:
    """What every ``from_pretrained`` returns: on ``device``, eval mode, ``folder_config`` attached."""
    model.folder_config = config
    return model.to(device).eval()


def load_config_model(folder: Path | str, *, kind: str, config_cls, model_cls,
                      device: torch.device | str = "cpu") -> nn.Module:
    """Rebuild ``model_cls(config_cls(**config.json))`` and load its weights, in eval mode."""
    raw = read_config(folder, kind)
    fields = {k: raw[k] for k in config_cls.__dataclass_fields__ if k in raw}
    model = model_cls(config_cls(**fields))
    load_weights(folder, model, device)
    return finish_loading(model, raw, device)
