"""The two commands' bodies: expand inputs, load models, run in batches, write, and count
failures. A file that cannot be used costs one ``path: reason`` line on stderr and the rest
still run; the return value is the exit status (0 all done, 1 some file failed)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TextIO

import numpy as np
import pandas as pd

from crrg_clip.data.images import ImageDecodeError

from .errors import UserError
from .inputs import Failure, expand_inputs, load_letterboxed, output_names
from .preprocess import Preprocessing

PROBE_THRESHOLD = 0.5  # the test accuracy's threshold (train/probe.py)


def pick(device: str):
    from crrg_clip.runtime import pick_device

    try:
        return pick_device(device)
    except RuntimeError as error:
        raise UserError(f"--device {device}: {error}") from None


def _decode_batch(paths: list[Path], names: list[str], prep: Preprocessing, failures: list[Failure],
                  stderr: TextIO):
    """The batch's readable images: (paths, names, uint8 (B, S, S), geometries)."""
    kept, canvases, geometries = [], [], []
    for path, name in zip(paths, names):
        try:
            canvas, geometry = load_letterboxed(path, prep.cache_size, prep.jpeg_draft)
        except ImageDecodeError as error:
            failure = Failure.from_error(path, error)
            failures.append(failure)
            print(failure.line(), file=stderr)
            continue
        kept.append((path, name))
        canvases.append(canvas)
        geometries.append(geometry)
    stacked = np.stack(canvases) if canvases else np.zeros((0, prep.cache_size, prep.cache_size), np.uint8)
    return [p for p, _ in kept], [n for _, n in kept], stacked, geometries


def _start(images: list[str], stderr: TextIO) -> tuple[list[Path], list[Failure]]:
    paths, failures = expand_inputs(images)
    for failure in failures:
        print(failure.line(), file=stderr)
    return paths, failures


def report_images(images: list[str], *, model: str, out: str, device: str = "auto", batch_size: int = 8,
                  decoding: dict | None = None, stdout: TextIO | None = None, stderr: TextIO | None = None) -> int:
    from .outputs import CELabeler, regions_document, write_image_outputs
    from .rrg import check_model_folder, load_rrg, run_batch

    stdout, stderr = stdout or sys.stdout, stderr or sys.stderr

    out_dir = Path(out)
    if out_dir.exists() and not out_dir.is_dir():
        raise UserError(f"--out {out_dir}: exists and is not a directory")
    check_model_folder(Path(model))  # usage errors first, before any file is looked at
    torch_device = pick(device)
    paths, failures = _start(images, stderr)
    models = load_rrg(model, torch_device, decoding)
    labeler = CELabeler()
    for note in (*models.prep.notes, *([labeler.missing] if labeler.missing else [])):
        print(f"note: {note}", file=stderr)
    settings = {k: getattr(models.decoding, k) for k in ("num_beams", "max_new_tokens", "similarity", "threshold")}
    settings["source"] = models.decoding.source
    all_names = output_names(paths)
    for start in range(0, len(paths), batch_size):
        batch_paths, names, canvases, geometries = _decode_batch(
            paths[start:start + batch_size], all_names[start:start + batch_size], models.prep, failures, stderr)
        if not names:
            continue
        predictions, reports = run_batch(models, names, canvases)
        groups = {n: g for n, g in predictions.groupby("dicom_id", sort=False)}
        texts = list(reports["report"]) + [s if sel else "" for n in names
                                           for s, sel in zip(groups[n]["generated_sentence"], groups[n]["selected"])]
        labels = labeler.label(texts)
        sentence_labels = labels[len(names):]
        for k, (path, name, canvas, geometry) in enumerate(zip(batch_paths, names, canvases, geometries)):
            report = str(reports["report"].iloc[k])
            rows = groups[name].sort_values("region_index")
            document = regions_document(path=path, geometry=geometry, rows=rows, report=report,
                                        report_labels=labels[k], model=str(model), decoding=settings,
                                        sentence_labels=sentence_labels[k * len(rows):(k + 1) * len(rows)])
            written = write_image_outputs(out_dir, name, document, canvas, rows)
            print(f"{path}\n  report: {report or '(empty)'}\n  wrote: {', '.join(str(p) for p in written)}",
                  file=stdout)
    return 1 if failures else 0


def classify_images(images: list[str], *, probe: str, out: str | None = None, device: str = "auto",
                    batch_size: int = 32, stdout: TextIO | None = None, stderr: TextIO | None = None) -> int:
    from .probe import load_probe_folder, probabilities

    stdout, stderr = stdout or sys.stdout, stderr or sys.stderr

    torch_device = pick(device)
    model, prep = load_probe_folder(probe, torch_device)
    paths, failures = _start(images, stderr)
    for note in prep.notes:
        print(f"note: {note}", file=stderr)
    rows = []
    print("image\tpneumonia_probability\tprediction", file=stdout)
    names = output_names(paths)
    for start in range(0, len(paths), batch_size):
        batch_paths, _, canvases, _ = _decode_batch(paths[start:start + batch_size], names[start:start + batch_size],
                                                    prep, failures, stderr)
        if not batch_paths:
            continue
        for path, p in zip(batch_paths, probabilities(model, prep, canvases, torch_device)):
            label = "pneumonia" if p >= PROBE_THRESHOLD else "no pneumonia"
            rows.append({"image": str(path), "pneumonia_probability": float(p), "prediction": label})
            print(f"{path}\t{p:.4f}\t{label}", file=stdout)
    if out:
        out_path = Path(out)
        out_path.parent.mkdir(parents=True, exist_ok=True)
        pd.DataFrame(rows, columns=["image", "pneumonia_probability", "prediction"]).to_csv(out_path, index=False)
    return 1 if failures else 0
