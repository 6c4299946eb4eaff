"""RRG inference for one split: select regions, generate their sentences, assemble reports.

Inputs are the region-feature file of the split (``features (N, 29, C)``, ``boxes``,
``detected``, plus the parquet ``dicom_id, row``), the selector (``select`` gives the
per-region logits and the selection; ``project`` the generator's input features) and a
generator folder. Letters: I images, R regions (29), C raw feature, D projected feature.
"""

from __future__ import annotations

import dataclasses

import logging
from contextlib import nullcontext
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from safetensors.torch import load_file

from crrg_clip.regions import NUM_REGIONS, REGIONS
from crrg_clip.report_assembly import assemble_reports

log = logging.getLogger(__name__)

# x1..y2 are letterboxed cache pixels (0 where not detected); x1_orig..y2_orig the original
# image's pixels (NaN where not detected or without a cache index); fallback = selected only
# because no region passed the threshold (at_least_one_selected)
BOX_COLUMNS = ["x1", "y1", "x2", "y2"]
ORIGINAL_BOX_COLUMNS = ["x1_orig", "y1_orig", "x2_orig", "y2_orig"]
PREDICTION_COLUMNS = ["dicom_id", "region_index", "region", *BOX_COLUMNS, *ORIGINAL_BOX_COLUMNS, "detected",
                      "selection_score", "selected", "fallback", "generated_sentence", "reference_sentence"]


def read_region_features(safetensors_path: Path | str, parquet_path: Path | str | None = None) -> dict:
    """The region-feature file and its row index, checked against each other."""
    safetensors_path = Path(safetensors_path)
    parquet_path = Path(parquet_path) if parquet_path else safetensors_path.with_suffix(".parquet")
    tensors = load_file(str(safetensors_path))
    for key in ("features", "boxes", "detected"):
        if key not in tensors:
            raise ValueError(f"{safetensors_path}: no tensor {key!r}")
    features = tensors["features"]
    if features.ndim != 3 or features.shape[1] != NUM_REGIONS:
        raise ValueError(f"{safetensors_path}: features must be (N, {NUM_REGIONS}, C), got {tuple(features.shape)}")
    index = pd.read_parquet(parquet_path)
    if not {"dicom_id", "row"} <= set(index.columns):
        raise ValueError(f"{parquet_path}: needs columns dicom_id, row")
    index = index.sort_values("row").reset_index(drop=True)
    if index["row"].tolist() != list(range(features.shape[0])):
        raise ValueError(f"{parquet_path}: rows must be 0..{features.shape[0] - 1}, one per feature row")
    return {"dicom_id": index["dicom_id"].astype(str).tolist(), "features": features,
            "boxes": tensors["boxes"], "detected": tensors["detected"], "scores": tensors.get("scores")}


def autocast(device: torch.device, amp: str):
    if device.type == "cuda" and amp == "bf16":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return nullcontext()


def inference_precision(generator, device: torch.device, amp: str):
    """bf16 inference casts the weights once (autocast would re-cast every weight at every step)."""
    if device.type == "cuda" and amp == "bf16":
        generator = generator.to(torch.bfloat16)
    return generator


@torch.no_grad()
def select_and_project(selector, features: torch.Tensor, device: torch.device,
                       detected: torch.Tensor | None = None, chunk: int = 256):
    """Selector logits (I, R), selection (I, R) bool, projected features (I, R, D) and the
    fallback mask (I, R) bool (selected only by ``at_least_one_selected``), in chunks.

    With ``detected (I, R)``, a region the detector did not find is never selected.
    """
    logits, selected, projected = [], [], []
    for start in range(0, features.shape[0], chunk):
        batch = features[start:start + chunk].to(device=device, dtype=torch.float32)  # (b, R, C)
        found = None if detected is None else detected[start:start + chunk].to(device).bool()  # (b, R)
        batch_logits, batch_selected = selector.select(batch, found)
        logits.append(batch_logits.float().cpu())
        selected.append(batch_selected.bool().cpu())
        projected.append(selector.project(batch).float().cpu())
    logits, selected = torch.cat(logits), torch.cat(selected)
    final = at_least_one_selected(logits, selected, detected)
    return logits, final, torch.cat(projected), final & ~selected


def at_least_one_selected(logits: torch.Tensor, selected: torch.Tensor,
                          detected: torch.Tensor | None = None) -> torch.Tensor:
    """Every image with a detected region gets a report: where no region passes the threshold,
    the best-scoring detected region is selected; an image with none stays empty.
    ``logits``/``selected``/``detected``: (I, R)."""
    selected = selected.clone()
    empty = ~selected.any(dim=1)  # (I,)
    if empty.any():
        masked = logits.clone().float()
        found = detected.bool().cpu() if detected is not None else torch.ones_like(selected)  # (I, R)
        masked[~found] = float("-inf")  # an undetected region (a zero feature) is never the fallback
        best = masked.argmax(dim=1)  # (I,)
        rows = (empty & found.any(dim=1)).nonzero(as_tuple=True)[0]
        selected[rows, best[rows]] = True
        log.info("%d images had no region above the threshold: their best detected region was selected; "
                 "%d images with no detected region get an empty report", len(rows), int((empty & ~found.any(dim=1)).sum()))
    return selected


@torch.no_grad()
def generate_for_pairs(generator, features: torch.Tensor, *, num_beams: int, max_new_tokens: int,
                       batch_size: int, device: torch.device, progress: bool = True) -> list[str]:
    """One sentence per row of ``features (S, D)``, ``batch_size`` rows per ``generate`` call.

    The rows are the selected regions of all images, image-major, so one call spans regions of
    several images. A row's sentence does not depend on the other rows of its call: every row
    starts from the same (placeholder, BOS) input of the same length, its region prefix is its
    own cache row, so nothing is padded, and beam search ranks hypotheses per row (rows that
    finish early are filled with EOS, which ``decode`` cuts). tests/test_generation_batched.py
    checks batch sizes 1, 7 and 64 give the same sentences (in float32 on CPU).
    """
    from tqdm import tqdm

    dtype = generator.conditioning.mlp[0].weight.dtype  # the generator's (bf16 when cast for inference)
    sentences: list[str] = []
    starts = range(0, features.shape[0], batch_size)
    for start in tqdm(starts, desc="generate", disable=not progress):
        batch = features[start:start + batch_size].to(device=device, dtype=dtype)  # (b, D)
        sentences += generator.generate_sentences(batch, num_beams=num_beams, max_new_tokens=max_new_tokens)
    return sentences


def reference_sentences(regions: pd.DataFrame, dicom_ids: list[str]) -> dict[tuple[str, int], str]:
    """(dicom_id, region_index) -> reference phrase ("" where the region has no sentence)."""
    frame = regions[regions["dicom_id"].astype(str).isin(set(dicom_ids))]
    frame = frame[frame["has_sentence"].astype(bool)]
    return {(str(d), int(r)): str(p) for d, r, p in zip(frame["dicom_id"], frame["region_index"], frame["phrase"])}


def original_pixel_boxes(dicom_ids: list[str], boxes: np.ndarray, detected: np.ndarray,
                         cache_index: pd.DataFrame | None) -> np.ndarray:
    """Cache-pixel boxes (I * R, 4) -> original pixels: ``(cache - pad) / scale``, clipped to the
    image where the index has width/height; NaN where not detected or no cache index is given.
    ``dicom_ids`` has one entry per image (I), ``detected`` (I * R,)."""
    if cache_index is None:
        return np.full(boxes.shape, np.nan, dtype=np.float64)
    geometry = cache_index.assign(dicom_id=cache_index["dicom_id"].astype(str)).set_index("dicom_id")
    missing = sorted(set(dicom_ids) - set(geometry.index))
    if missing:
        raise ValueError(f"cache index has no row for {len(missing)} image(s), e.g. {missing[:3]}")
    per_image = geometry.loc[list(dicom_ids)]
    per_row = {c: np.repeat(per_image[c].to_numpy(np.float64), NUM_REGIONS)
               for c in ("scale", "pad_x", "pad_y", "width", "height") if c in per_image.columns}
    out = cache_to_original(boxes, **per_row)
    out[~detected] = np.nan
    return out


def cache_to_original(boxes: np.ndarray, scale, pad_x, pad_y, width=None, height=None) -> np.ndarray:
    """Letterboxed cache-pixel boxes (N, 4) -> original pixels, ``(cache - pad) / scale``, clipped to
    ``width`` / ``height`` when given. Geometry: scalars or one value per box (N,)."""
    boxes = np.asarray(boxes, dtype=np.float64)
    column = lambda v: np.asarray(v, dtype=np.float64).reshape(-1, 1)  # noqa: E731  (N or 1, 1)
    out = np.empty_like(boxes)
    out[:, [0, 2]] = (boxes[:, [0, 2]] - column(pad_x)) / column(scale)
    out[:, [1, 3]] = (boxes[:, [1, 3]] - column(pad_y)) / column(scale)
    if width is not None and height is not None:
        out[:, [0, 2]] = np.clip(out[:, [0, 2]], 0, column(width))
        out[:, [1, 3]] = np.clip(out[:, [1, 3]], 0, column(height))
    return out


def predict_regions(generator, selector, region_features: dict, references: dict | None, *, num_beams: int,
                    max_new_tokens: int, batch_size: int, device: torch.device,
                    progress: bool = True, cache_index: pd.DataFrame | None = None) -> pd.DataFrame:
    """One row per (image, region) in PREDICTION_COLUMNS order; ``cache_index`` (``dicom_id,
    scale, pad_x, pad_y`` [, ``width, height``]) gives the original-pixel boxes."""
    features = region_features["features"]  # (I, R, C)
    n_images = features.shape[0]
    logits, selected, projected, fallback = select_and_project(selector, features, device,
                                                               region_features["detected"])
    if getattr(generator, "input_kind", "selector_projection") == "detector_features":
        # (I, R, C): the generator projects the standardised detector features itself
        projected = selector.standardize(features.float())
    flat_selected = selected.reshape(-1)  # (I * R,)
    chosen = projected.reshape(-1, projected.shape[-1])[flat_selected]  # (S, D or C)
    log.info("%d images, %d of %d regions selected", n_images, int(flat_selected.sum()), flat_selected.numel())
    generated = generate_for_pairs(generator, chosen, num_beams=num_beams, max_new_tokens=max_new_tokens,
                                   batch_size=batch_size, device=device, progress=progress)
    sentences = np.full(flat_selected.numel(), "", dtype=object)
    sentences[flat_selected.numpy()] = generated
    dicom_ids = np.repeat(np.asarray(region_features["dicom_id"], dtype=object), NUM_REGIONS)
    region_index = np.tile(np.arange(NUM_REGIONS, dtype=np.int64), n_images)
    boxes = region_features["boxes"].float().reshape(-1, 4).numpy()
    detected = region_features["detected"].reshape(-1).bool().numpy()
    original = original_pixel_boxes(list(region_features["dicom_id"]), boxes, detected, cache_index)
    references = references or {}
    frame = pd.DataFrame({
        "dicom_id": dicom_ids.astype(str),
        "region_index": region_index,
        "region": [REGIONS[i] for i in region_index],
        **{c: boxes[:, i] for i, c in enumerate(BOX_COLUMNS)},
        **{c: original[:, i] for i, c in enumerate(ORIGINAL_BOX_COLUMNS)},
        "detected": detected,
        "selection_score": logits.reshape(-1).numpy().astype(np.float32),
        "selected": flat_selected.numpy(),
        "fallback": fallback.reshape(-1).numpy(),
        "generated_sentence": sentences.astype(str),
        "reference_sentence": [references.get((d, int(r)), "") for d, r in zip(dicom_ids, region_index)],
    })
    return frame[PREDICTION_COLUMNS]


def reports_frame(predictions: pd.DataFrame, images: pd.DataFrame | None, *, similarity: str,
                  threshold: float) -> pd.DataFrame:
    """``dicom_id, report, reference``; reference = FINDINGS from images.parquet ("" if none)."""
    reports = assemble_reports(predictions, similarity=similarity, threshold=threshold)
    if images is None:
        reports["reference"] = ""
        return reports
    findings = dict(zip(images["dicom_id"].astype(str), images["findings"].fillna("").astype(str)))
    unknown = [d for d in reports["dicom_id"] if d not in findings]
    if unknown:
        raise ValueError(f"images.parquet has no row for {len(unknown)} image(s), e.g. {unknown[:3]}")
    reports["reference"] = [findings[d] for d in reports["dicom_id"]]
    return reports


def generate_reports(settings, inputs, outputs, *, device, seed: int) -> dict:
    """What rules generate_reports / generate_reports_for do: select regions, write their
    sentences, assemble the reports. ``settings``: ``crrg_clip.settings.GenerationSettings``;
    ``inputs`` / ``outputs``: the rule's files by name (``regions`` / ``predictions``: the
    test split's references and per-region predictions, optional)."""
    from crrg_clip.models.generator import RegionGenerator
    from crrg_clip.models.selector import RegionSelector
    from crrg_clip.runinfo import now, write_run_info
    from crrg_clip.runtime import describe_device, seed_everything

    started = now()
    seed_everything(seed)
    generator_folder = inputs["generator"]
    selector = RegionSelector.from_pretrained(Path(inputs["selector_config"]).parent, device)
    generator = inference_precision(RegionGenerator.from_pretrained(generator_folder, device), device, settings.amp)
    region_features = read_region_features(inputs["features"], inputs["features_index"])
    references = None
    if inputs.get("regions"):
        references = reference_sentences(pd.read_parquet(inputs["regions"]), region_features["dicom_id"])
    cache_index = (pd.read_parquet(inputs["cache_index"], columns=["dicom_id", "scale", "pad_x", "pad_y", "width",
                                                                  "height"])
                   if inputs.get("cache_index") else None)
    predictions = predict_regions(generator, selector, region_features, references, num_beams=settings.num_beams,
                                  max_new_tokens=settings.max_new_tokens, batch_size=settings.batch_size,
                                  device=device, cache_index=cache_index)
    images = pd.read_parquet(inputs["images"], columns=["dicom_id", "findings"])
    reports = reports_frame(predictions, images, similarity=settings.similarity, threshold=settings.threshold)
    if outputs.get("predictions"):
        Path(outputs["predictions"]).parent.mkdir(parents=True, exist_ok=True)
        predictions.to_parquet(outputs["predictions"], index=False)
    Path(outputs["reports"]).parent.mkdir(parents=True, exist_ok=True)
    reports.to_parquet(outputs["reports"], index=False)
    summary = {"images": len(reports), "regions_selected": int(predictions["selected"].sum()),
               "fallback_regions": int(predictions["fallback"].sum()),
               "empty_reports": int((reports["report"] == "").sum())}
    log.info("wrote %s: %s", outputs["reports"], summary)
    write_run_info(outputs["run_info"], started=started, device=describe_device(device), seed=seed,
                   settings={**dataclasses.asdict(settings), "generator": str(generator_folder)},
                   extra={"summary": summary})
    return summary
