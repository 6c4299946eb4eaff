"""The RSNA probe on new images: the probe folder holds its frozen encoder and its head.

The view is the probe's evaluation view (``train.probe.eval_view``: Resize + CenterCrop to
the probe's ``image_size`` from the letterboxed cache canvas), normalised with the mean and
std stored in the folder (per channel for ``imagenet`` normalisation). Letters: B images,
C channels, S cache side, s probe input side.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from .errors import UserError
from .preprocess import Preprocessing, probe_preprocessing


def load_probe_folder(folder: Path | str, device: torch.device):
    """``(probe, preprocessing)``; UserError when ``folder`` is not a probe folder."""
    from crrg_clip.modelio import KindError
    from crrg_clip.models.probe import LinearProbe

    folder = Path(folder)
    if not folder.is_dir():
        raise UserError(f"--probe {folder}: no such directory")
    try:
        probe = LinearProbe.from_pretrained(folder, device)
        prep = probe_preprocessing(folder, probe.folder_config)
    except KindError as error:
        raise UserError(f"--probe {folder}: not a probe folder (config.json kind {error.found!r}, expected "
                        f"{error.expected!r}); expected e.g. results/rclip/probe/rclip_radiologist/seed0") from None
    except FileNotFoundError as error:
        raise UserError(f"--probe {folder}: {error}") from None
    except (OSError, ValueError, KeyError, RuntimeError) as error:
        raise UserError(f"--probe {folder}: cannot load ({type(error).__name__}: {error})") from None
    return probe, prep


@torch.no_grad()
def probabilities(probe, prep: Preprocessing, canvases: np.ndarray, device: torch.device) -> np.ndarray:
    """uint8 (B, S, S) canvases -> pneumonia probability (B,)."""
    from crrg_clip.train.probe import eval_view

    views = prep.normalise(torch.stack([eval_view(c, prep.input_size) for c in canvases]))  # (B, C, s, s)
    return probe.predict_proba(views.to(device)).float().cpu().numpy()
