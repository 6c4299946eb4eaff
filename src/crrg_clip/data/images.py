"""Decode chest X-rays to 8-bit greyscale and letterbox them.

Letterbox: scale so the long side is ``S``, paste centred on a black ``S x S`` canvas;
``cache = original * scale + pad``. JPEGs are decoded with Pillow's ``draft()`` (the
decoder downscales by 1/2, 1/4 or 1/8 in the DCT domain) before the final resize.
DICOMs: modality LUT, VOI LUT / windowing where present, MONOCHROME1 inverted.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

RESAMPLE = Image.Resampling.BILINEAR


class ImageDecodeError(ValueError):
    """An image file cannot be decoded; the message names the file and the problem."""


@dataclass(frozen=True)
class Letterbox:
    """Geometry of one letterboxed image (``cache = original * scale + pad``)."""

    width: int  # original
    height: int
    size: int  # canvas side S
    scale: float
    new_width: int
    new_height: int
    pad_x: int
    pad_y: int


def letterbox_geometry(width: int, height: int, size: int) -> Letterbox:
    if width < 1 or height < 1:
        raise ValueError(f"image size {width}x{height} is empty")
    scale = size / max(width, height)
    new_w = min(size, max(1, round(width * scale)))
    new_h = min(size, max(1, round(height * scale)))
    return Letterbox(width, height, size, scale, new_w, new_h, (size - new_w) // 2, (size - new_h) // 2)


def map_boxes(boxes: np.ndarray, scale: float, pad_x: float, pad_y: float) -> np.ndarray:
    """Original-pixel ``(..., 4)`` x1, y1, x2, y2 boxes -> cache pixels (NaN stays NaN)."""
    boxes = np.asarray(boxes, dtype=np.float64)  # (..., 4)
    out = boxes * scale
    out[..., [0, 2]] += pad_x
    out[..., [1, 3]] += pad_y
    return out


def paste_letterbox(image: Image.Image, geometry: Letterbox) -> np.ndarray:
    """Resize ``image`` (any size, same aspect as the original) into the letterbox canvas."""
    if image.size != (geometry.new_width, geometry.new_height):
        image = image.resize((geometry.new_width, geometry.new_height), RESAMPLE)
    canvas = np.zeros((geometry.size, geometry.size), dtype=np.uint8)  # (S, S)
    canvas[geometry.pad_y: geometry.pad_y + geometry.new_height,
           geometry.pad_x: geometry.pad_x + geometry.new_width] = np.asarray(image, dtype=np.uint8)
    return canvas


def _to_grey(image: Image.Image, path: Path | str) -> Image.Image:
    if image.mode == "L":
        return image
    if image.mode in ("RGB", "RGBA", "CMYK", "YCbCr", "P", "LA", "1"):
        return image.convert("L")
    if image.mode in ("I;16", "I;16B", "I", "F"):
        arr = np.asarray(image, dtype=np.float64)
        return Image.fromarray(_minmax_uint8(arr))
    raise ImageDecodeError(f"{path}: unsupported image mode {image.mode}")


def check_jpeg(path: Path | str) -> tuple[int, int]:
    """Decode ``path`` cheaply (draft at 1/8) to prove it is readable; return ``(width, height)``."""
    try:
        with Image.open(path) as image:
            width, height = image.size
            if image.format == "JPEG":
                image.draft("L", (max(1, width // 8), max(1, height // 8)))
            image.load()
    except FileNotFoundError:
        raise ImageDecodeError(f"{path}: file not found") from None
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as error:
        raise ImageDecodeError(f"{path}: cannot decode image ({error})") from None
    return width, height


def load_jpeg_letterbox(path: Path | str, size: int, draft: bool = True) -> tuple[np.ndarray, Letterbox]:
    """``(uint8 (S, S) canvas, geometry)``; geometry refers to the full-resolution original."""
    try:
        with Image.open(path) as image:
            geometry = letterbox_geometry(image.size[0], image.size[1], size)
            if draft and image.format == "JPEG":
                # The decoder picks the largest 1/2^k reduction still >= the requested size.
                image.draft("L", (geometry.new_width, geometry.new_height))
            image.load()
            grey = _to_grey(image, path)
            canvas = paste_letterbox(grey, geometry)
    except ImageDecodeError:
        raise
    except FileNotFoundError:
        raise ImageDecodeError(f"{path}: file not found") from None
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as error:
        raise ImageDecodeError(f"{path}: cannot decode image ({error})") from None
    return canvas, geometry


def _minmax_uint8(arr: np.ndarray) -> np.ndarray:
    arr = np.asarray(arr, dtype=np.float64)
    low, high = float(np.min(arr)), float(np.max(arr))
    if high <= low:
        return np.zeros(arr.shape, dtype=np.uint8)
    return np.clip(np.round((arr - low) / (high - low) * 255.0), 0, 255).astype(np.uint8)


def dicom_to_uint8(dataset, path: Path | str = "<dataset>") -> np.ndarray:
    """Pixel data of a pydicom dataset as ``uint8 (H, W)``, display-ready.

    8-bit data without a modality rescale or VOI stays as stored; anything else goes
    through the modality LUT and VOI LUT/windowing (pydicom.pixels), then is scaled to
    0..255 over its range. MONOCHROME1 is inverted so that air is black.
    """
    from pydicom.pixels import apply_modality_lut, apply_voi_lut

    try:
        arr = dataset.pixel_array
    except Exception as error:  # pydicom raises many types for missing handlers / bad data
        raise ImageDecodeError(f"{path}: cannot decode DICOM pixel data ({type(error).__name__}: {error})") from None
    if int(getattr(dataset, "NumberOfFrames", 1) or 1) > 1:
        raise ImageDecodeError(f"{path}: multi-frame DICOM ({dataset.NumberOfFrames} frames) is not a radiograph")
    photometric = str(getattr(dataset, "PhotometricInterpretation", "MONOCHROME2")).upper()
    if int(getattr(dataset, "SamplesPerPixel", 1) or 1) != 1:
        if arr.ndim == 3 and arr.shape[-1] == 3:
            return np.asarray(Image.fromarray(arr.astype(np.uint8), "RGB").convert("L"))
        raise ImageDecodeError(f"{path}: {dataset.SamplesPerPixel} samples per pixel ({photometric})")
    if arr.ndim != 2:
        raise ImageDecodeError(f"{path}: pixel array has shape {arr.shape}, expected (rows, columns)")

    has_voi = "VOILUTSequence" in dataset or "WindowCenter" in dataset
    has_rescale = any(float(getattr(dataset, k, d)) != d for k, d in (("RescaleSlope", 1.0), ("RescaleIntercept", 0.0)))
    bits = int(getattr(dataset, "BitsStored", 8) or 8)
    if bits <= 8 and not has_voi and not has_rescale and arr.dtype == np.uint8:
        out = arr.copy()
    else:
        values = apply_modality_lut(arr, dataset) if has_rescale or "ModalityLUTSequence" in dataset else arr
        if has_voi:
            values = apply_voi_lut(values, dataset, index=0)
        out = _minmax_uint8(values)
    if photometric == "MONOCHROME1":
        out = 255 - out
    return out


def load_dicom(path: Path | str) -> np.ndarray:
    """``uint8 (H, W)`` from a DICOM file; errors name the file."""
    import pydicom
    from pydicom.errors import InvalidDicomError

    try:
        dataset = pydicom.dcmread(path)
    except FileNotFoundError:
        raise ImageDecodeError(f"{path}: file not found") from None
    except (InvalidDicomError, OSError, ValueError, EOFError) as error:
        raise ImageDecodeError(f"{path}: not a readable DICOM file ({error})") from None
    if "PixelData" not in dataset:
        raise ImageDecodeError(f"{path}: DICOM has no pixel data")
    return dicom_to_uint8(dataset, path)


def load_dicom_letterbox(path: Path | str, size: int) -> tuple[np.ndarray, Letterbox]:
    pixels = load_dicom(path)  # (H, W)
    geometry = letterbox_geometry(pixels.shape[1], pixels.shape[0], size)
    return paste_letterbox(Image.fromarray(pixels), geometry), geometry


__all__ = [
    "ImageDecodeError", "Letterbox", "letterbox_geometry", "map_boxes", "paste_letterbox",
    "check_jpeg", "load_jpeg_letterbox", "dicom_to_uint8", "load_dicom", "load_dicom_letterbox",
]
