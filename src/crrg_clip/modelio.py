"""A trained model is a folder: config.json + model.safetensors. Loading never unpickles."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from torch import nn


def save_model_folder(folder: Path | str, model: nn.Module, config: dict) -> None:
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
    # safetensors refuses shared storage; contiguous clones make every tensor its own
    state = {k: v.detach().to("cpu").contiguous().clone() for k, v in model.state_dict().items()}
    save_file(state, str(folder / "model.safetensors"))


def read_model_config(folder: Path | str) -> dict:
    path = Path(folder) / "config.json"
    if not path.exists():
        raise FileNotFoundError(f"{folder}: not a model folder (no config.json)")
    return json.loads(path.read_text())


def load_weights(folder: Path | str, model: nn.Module, device: torch.device | str = "cpu") -> nn.Module:
    path = Path(folder) / "model.safetensors"
    if not path.exists():
        raise FileNotFoundError(f"{folder}: no model.safetensors")
    model.load_state_dict(load_file(str(path), device=str(device)))
    return model


def load_config_model(folder: Path | str, *, kind: str, config_cls, model_cls,
                      device: torch.device | str = "cpu") -> nn.Module:
    """Rebuild ``model_cls(config_cls(**config.json))`` and load its weights, in eval mode."""
    raw = read_model_config(folder)
    if raw.get("kind") != kind:
        raise ValueError(f"{folder}/config.json: kind {raw.get('kind')!r}, expected {kind!r}")
    fields = {k: raw[k] for k in config_cls.__dataclass_fields__ if k in raw}
    model = model_cls(config_cls(**fields))
    load_weights(folder, model, device)
    return model.to(device).eval()
