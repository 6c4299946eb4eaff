"""Device choice, seeding and thread settings: arguments, never module globals."""

from __future__ import annotations

import logging
import os
import random

import numpy as np
import torch

log = logging.getLogger(__name__)


def pick_device(requested: str = "auto") -> torch.device:
    """CUDA when requested or available (the scheduler's CUDA_VISIBLE_DEVICES decides which), else CPU."""
    if requested == "cpu":
        device = torch.device("cpu")
    elif requested == "cuda" or (requested == "auto" and torch.cuda.is_available()):
        if not torch.cuda.is_available():
            raise RuntimeError("device: cuda was requested but no CUDA device is visible")
        device = torch.device("cuda")
    else:
        device = torch.device("cpu")
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    log.info("device %s (%s), CUDA_VISIBLE_DEVICES=%s", device, name,
             os.environ.get("CUDA_VISIBLE_DEVICES"))
    return device


def describe_device(device: torch.device) -> str:
    if device.type == "cuda":
        return f"cuda:{torch.cuda.get_device_name(device)}"
    return "cpu"


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def set_threads(threads: int) -> None:
    if threads > 0:
        torch.set_num_threads(threads)


def setup_logging(log_path=None) -> None:
    handlers = [logging.StreamHandler()]
    if log_path:
        handlers.append(logging.FileHandler(log_path, mode="w"))
    logging.basicConfig(level=logging.INFO, handlers=handlers, force=True,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
