"""IMAGE arguments -> files, and files -> letterboxed uint8 canvases.

Decoding is the image cache's own (``crrg_clip.data.images``): JPEG and PNG through
``load_jpeg_letterbox`` (Pillow; the DCT-domain draft applies to JPEGs only), DICOM through
``load_dicom_letterbox`` (modality LUT, VOI LUT / windowing, MONOCHROME1 inverted). The
kind is read from the file's first bytes, not its name, so a DICOM export without a
suffix works and a text file called ``x.jpg`` gets a clear reason.
"""

from __future__ import annotations

import glob
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from crrg_clip.data.images import ImageDecodeError, Letterbox, load_dicom_letterbox, load_jpeg_letterbox

SUFFIXES = {".jpg", ".jpeg", ".png", ".dcm", ".dicom"}  # what a directory contributes
_GLOB_CHARS = set("*?[")


@dataclass(frozen=True)
class Failure:
    """One input that produced nothing; printed as ``path: reason``."""

    path: str
    reason: str

    def line(self) -> str:
        return f"{self.path}: {self.reason}"

    @classmethod
    def from_error(cls, path: Path | str, error: Exception) -> "Failure":
        """The decode error's reason (its message already starts with the path)."""
        message, prefix = str(error), f"{path}: "
        return cls(str(path), message[len(prefix):] if message.startswith(prefix) else message)


def sniff(path: Path) -> str | None:
    """``jpeg``, ``png``, ``dicom`` or None, from the magic bytes."""
    with open(path, "rb") as handle:
        head = handle.read(132)
    if head[:3] == b"\xff\xd8\xff":
        return "jpeg"
    if head[:8] == b"\x89PNG\r\n\x1a\n":
        return "png"
    if head[128:132] == b"DICM":
        return "dicom"
    if path.suffix.lower() in (".dcm", ".dicom"):
        return "dicom"  # a DICOM without the preamble; pydicom says whether it really is one
    return None


def _directory_files(folder: Path) -> list[Path]:
    files = []
    for path in sorted(folder.rglob("*")):
        if path.name.startswith(".") or not path.is_file():
            continue
        if path.suffix.lower() in SUFFIXES or (not path.suffix and sniff(path) == "dicom"):
            files.append(path)
    return files


def expand_inputs(arguments: list[str]) -> tuple[list[Path], list[Failure]]:
    """Files named, found in directories (recursively) or matched by a glob, in order, once each."""
    found: list[Path] = []
    failures: list[Failure] = []
    for argument in arguments:
        path = Path(argument)
        if not argument.strip():  # Path("") is the working directory: an empty shell variable, not a request
            failures.append(Failure(repr(argument), "empty file name"))
            files = []
        elif path.is_dir():
            files = _directory_files(path)
            if not files:
                failures.append(Failure(argument, "directory holds no JPEG, PNG or DICOM file"))
        elif path.exists():
            files = [path]
        elif _GLOB_CHARS & set(argument):
            files = [Path(p) for p in sorted(glob.glob(argument, recursive=True)) if Path(p).is_file()]
            if not files:
                failures.append(Failure(argument, "no file matches this pattern"))
        else:
            failures.append(Failure(argument, "file not found"))
            files = []
        found += files
    unique = list(dict.fromkeys(p.resolve() for p in found))
    return [Path(p) for p in unique], failures


def load_letterboxed(path: Path, size: int, jpeg_draft: bool) -> tuple[np.ndarray, Letterbox]:
    """``(uint8 (S, S), geometry)`` exactly as the image cache builds a row; ImageDecodeError otherwise."""
    if not path.is_file():
        raise ImageDecodeError(f"{path}: not a file")
    try:
        kind = sniff(path)
    except OSError as error:
        raise ImageDecodeError(f"{path}: cannot read ({error.strerror or error})") from None
    if kind == "dicom":
        return load_dicom_letterbox(path, size)
    if kind in ("jpeg", "png"):
        return load_jpeg_letterbox(path, size, draft=jpeg_draft)
    raise ImageDecodeError(f"{path}: unsupported file type (expected a JPEG, PNG or DICOM file)")


def output_names(paths: list[Path]) -> list[str]:
    """A file-name stem per input, unique within the batch (``a``, ``a-2``, ...)."""
    names: list[str] = []
    taken: set[str] = set()
    for path in paths:
        stem = path.name[: -len(path.suffix)] if path.suffix else path.name
        name, k = stem, 1
        while name in taken:
            k += 1
            name = f"{stem}-{k}"
        taken.add(name)
        names.append(name)
    return names
