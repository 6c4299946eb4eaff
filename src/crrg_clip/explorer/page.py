"""Write the explorer: ``index.html`` (markup, CSS, JS and data inline) and
``images/<n>.png`` beside it (the cache images, referenced by relative paths), so the
folder opens from ``file://`` and can be copied or zipped whole."""

from __future__ import annotations

import html
import json
from importlib import resources
from pathlib import Path

import numpy as np
from PIL import Image

IMAGES_DIR = "images"

TEMPLATE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{title}</title>
<style>
{css}
</style>
</head>
<body>
<header><h1>{title}</h1>
<div>Every test image of every RRG system: generated vs reference report, CE labels
(CheXpert: chips green = in both, red = hallucinated, only in the generated report, amber =
missed, only in the reference) and per-report metrics. Click a report for its image, the
detected regions (dashed), the selected regions (solid, labelled) and each region's
sentences.</div>
<div class="note" id="note"></div></header>
<div id="controls">
<label>system<select id="f-system"></select></label>
<label>region (selected or described)<select id="f-region"></select></label>
<label>observation<select id="f-obs"></select></label>
<label>finding<select id="f-finding"></select></label>
<label>sort by<select id="f-sort"></select></label>
<label>order<select id="f-dir"></select></label>
<span id="count"></span>
</div>
<main><div id="list"></div><div id="detail"></div></main>
<script>
window.EXPLORER = {data};
</script>
<script>
{js}
</script>
</body>
</html>
"""


def _static(name: str) -> str:
    return resources.files("crrg_clip.explorer").joinpath("static", name).read_text()


def _script_json(document: dict) -> str:
    # "</" would end the <script> element early; JSON allows "<\\/" for "</"
    return json.dumps(document, separators=(",", ":"), allow_nan=False).replace("</", "<\\/")


def write_images(out_dir: Path, images: dict[str, np.ndarray]) -> dict[str, dict]:
    """PNG per image under ``images/`` (names are numbers: dicom_ids need no escaping)."""
    folder = out_dir / IMAGES_DIR
    folder.mkdir(parents=True, exist_ok=True)
    refs = {}
    for n, (dicom_id, pixels) in enumerate(sorted(images.items())):
        name = f"{IMAGES_DIR}/{n}.png"
        Image.fromarray(np.asarray(pixels, dtype=np.uint8)).save(out_dir / name, compress_level=3)
        refs[dicom_id] = {"src": name, "size": int(pixels.shape[-1])}
    return refs


def write_page(out_dir: Path | str, document: dict, images: dict[str, np.ndarray],
               title: str = "CRRG-CLIP explorer") -> Path:
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    document = {**document, "images": write_images(out_dir, images)}
    page = TEMPLATE.format(title=html.escape(title), css=_static("explorer.css"), js=_static("explorer.js"),
                           data=_script_json(document))
    index = out_dir / "index.html"
    index.write_text(page, encoding="utf-8")
    return index
