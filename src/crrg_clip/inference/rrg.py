"""RRG on new images: detector -> (float16 features, as the workflow stores them) ->
selector -> generator -> report, through ``crrg_clip.generate``'s own functions, so a new
image follows the path the test set took.

Letters: B images in a batch, R regions (29), C detector channels, S cache side.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from crrg_clip.generate import predict_regions, reports_frame
from crrg_clip.regions import NUM_REGIONS

from .errors import UserError
from .preprocess import Preprocessing, detector_preprocessing

log = logging.getLogger(__name__)

PARTS = ("detector", "selector", "generator")
RUN_RECORD = "reports_test.run.json"  # written beside the model folders by generate_reports


@dataclass(frozen=True)
class Decoding:
    """How sentences are generated and assembled (the test reports' settings unless overridden)."""

    num_beams: int
    max_new_tokens: int
    batch_size: int
    similarity: str
    threshold: float
    source: str  # where the values came from, for the user


@dataclass
class RRGModels:
    detector: torch.nn.Module
    selector: torch.nn.Module
    generator: torch.nn.Module
    prep: Preprocessing
    decoding: Decoding
    device: torch.device


def check_model_folder(folder: Path) -> None:
    if not folder.is_dir():
        raise UserError(f"--model {folder}: no such directory")
    missing = [p for p in PARTS if not (folder / p / "config.json").is_file()]
    if missing:
        raise UserError(f"--model {folder}: not an RRG model folder (no {', '.join(f'{p}/config.json' for p in missing)}); "
                        "expected e.g. results/rrg/rrg_opt/seed0")


def decoding_settings(folder: Path, generator_config: dict, overrides: dict) -> Decoding:
    """CLI overrides > the test reports' run record beside the models > built-in defaults."""
    values = {"num_beams": 4, "max_new_tokens": int(generator_config.get("max_sentence_tokens", 40)),
              "batch_size": 64, "similarity": "token_f1", "threshold": 0.9}
    source = "built-in defaults"
    record = folder / RUN_RECORD
    if record.is_file():
        try:
            settings = json.loads(record.read_text()).get("settings", {})
        except (OSError, ValueError):
            settings = {}
        known = {k: settings[k] for k in values if k in settings}
        if known:
            values.update(known)
            source = str(record)
    given = {k: v for k, v in overrides.items() if v is not None}
    values.update(given)
    if given:
        source += f" (overridden: {', '.join(sorted(given))})"
    return Decoding(num_beams=int(values["num_beams"]), max_new_tokens=int(values["max_new_tokens"]),
                    batch_size=int(values["batch_size"]), similarity=str(values["similarity"]),
                    threshold=float(values["threshold"]), source=source)


def quiet_transformers() -> None:
    """No progress bars or generation advice on a command's stderr (its lines are the user's)."""
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    hf_logging.set_verbosity_error()


def load_rrg(folder: Path | str, device: torch.device, overrides: dict | None = None) -> RRGModels:
    """The three stage folders under ``folder``; UserError when they are not there or not loadable."""
    from crrg_clip.models.detector import RegionDetector
    from crrg_clip.models.generator import RegionGenerator
    from crrg_clip.models.selector import RegionSelector

    folder = Path(folder)
    check_model_folder(folder)
    quiet_transformers()
    loaded = {}
    for part, model_cls in zip(PARTS, (RegionDetector, RegionSelector, RegionGenerator)):
        try:
            loaded[part] = model_cls.from_pretrained(folder / part, device)
        except (OSError, ValueError, KeyError, TypeError, RuntimeError) as error:
            raise UserError(f"--model {folder}: cannot load {part}/ ({type(error).__name__}: {error})") from None
    detector, generator = loaded["detector"], loaded["generator"]
    return RRGModels(
        detector=detector, selector=loaded["selector"], generator=generator,
        prep=detector_preprocessing(folder / "detector", detector.folder_config),
        decoding=decoding_settings(folder, generator.folder_config, overrides or {}), device=device)


def to_network(canvases: np.ndarray, prep: Preprocessing) -> torch.Tensor:
    """uint8 (B, S, S) -> normalised float (B, 1, S, S), as DetectorData.plain_images does."""
    x = torch.from_numpy(np.asarray(canvases, dtype=np.float32) / 255.0)[:, None]  # (B, 1, S, S)
    return prep.normalise(x)


@torch.no_grad()
def abnormal_scores(selector, features: torch.Tensor, device: torch.device) -> torch.Tensor | None:
    """The selector's abnormal-head logits (B, R), or None when it was trained without one."""
    if getattr(selector, "abnormal_head", None) is None:
        return None
    return selector.logits(features.to(device=device, dtype=torch.float32))["abnormal"].float().cpu()


@torch.no_grad()
def run_batch(models: RRGModels, names: list[str], canvases: np.ndarray, progress: bool = False
              ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``(predictions, reports)`` for one batch: PREDICTION_COLUMNS (+ ``abnormal_score``), and
    ``dicom_id, report`` with ``dicom_id`` = the names given. Boxes are in cache pixels."""
    device = models.device
    out = models.detector.predict(to_network(canvases, models.prep).to(device))
    # the workflow stores region features as float16 (region_features.py); so do we
    features = out["features"].to("cpu", torch.float16)  # (B, R, C)
    region_features = {"dicom_id": list(names), "features": features,
                       "boxes": out["boxes"].to("cpu", torch.float32),  # (B, R, 4)
                       "detected": out["detected"].to("cpu").bool()}  # (B, R)
    decoding = models.decoding
    predictions = predict_regions(models.generator, models.selector, region_features, None,
                                  num_beams=decoding.num_beams, max_new_tokens=decoding.max_new_tokens,
                                  batch_size=decoding.batch_size, device=device, progress=progress)
    abnormal = abnormal_scores(models.selector, features, device)
    predictions["abnormal_score"] = (np.full(len(predictions), np.nan, dtype=np.float32) if abnormal is None
                                     else abnormal.reshape(-1).numpy().astype(np.float32))
    predictions["detection_score"] = out["scores"].to("cpu").float().reshape(-1).numpy()
    reports = reports_frame(predictions, None, similarity=decoding.similarity, threshold=decoding.threshold)
    assert len(predictions) == len(names) * NUM_REGIONS
    return predictions, reports
