"""A chest-like layout of the 29 Chest ImaGenome regions, jittered per image.

Coordinates are image pixels with the radiological convention: the patient's right side
is on the image's left. Every box is ``(x1, y1, x2, y2)`` in integers, clipped to the
image, and the drawing code (``images.py``) paints the anatomy from these same boxes, so
the scene graph's boxes match what is drawn.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from crrg_clip.regions import REGIONS

Box = tuple[int, int, int, int]

# Width / height factors of the cardiac silhouette for the cardiomegaly severities.
HEART_ENLARGEMENT = {"normal": 1.0, "mild": 1.22, "moderate": 1.40}


@dataclass(frozen=True)
class Anatomy:
    """One image's region boxes (pixels) and the few shape parameters the drawing needs."""

    height: int
    width: int
    boxes: dict[str, Box]  # the 29 regions, REGIONS order
    body: tuple[float, float, float, float]  # ellipse centre x, centre y, semi-axes x, y

    def box(self, region: str) -> Box:
        return self.boxes[region]


def _lung_subboxes(side: str, lung: tuple[float, float, float, float]) -> dict[str, tuple]:
    """Zones, apex, hilum, costophrenic angle and hemidiaphragm from one lung's box."""
    x1, y1, x2, y2 = lung
    w, h = x2 - x1, y2 - y1
    # Image-left lung (patient right) has its medial edge at x2.
    if side == "right":
        medial = (x2 - 0.36 * w, x2)
        lateral = (x1, x1 + 0.32 * w)
        apex_x = (x1 + 0.08 * w, x2)
    else:
        medial = (x1, x1 + 0.36 * w)
        lateral = (x2 - 0.32 * w, x2)
        apex_x = (x1, x2 - 0.08 * w)
    return {
        f"{side} lung": (x1, y1, x2, y2),
        f"{side} upper lung zone": (x1, y1, x2, y1 + 0.36 * h),
        f"{side} mid lung zone": (x1, y1 + 0.33 * h, x2, y1 + 0.63 * h),
        f"{side} lower lung zone": (x1, y1 + 0.60 * h, x2, y2),
        f"{side} hilar structures": (medial[0], y1 + 0.34 * h, medial[1], y1 + 0.62 * h),
        f"{side} apical zone": (apex_x[0], y1, apex_x[1], y1 + 0.20 * h),
        f"{side} costophrenic angle": (lateral[0], y2 - 0.17 * h, lateral[1], y2),
        f"{side} hemidiaphragm": (x1, y2 - 0.10 * h, x2, y2 + 0.06 * h),
    }


def sample_anatomy(rng: np.random.Generator, height: int, width: int, *, heart: str = "normal") -> Anatomy:
    """Jitter the canonical frontal layout (scale, shift, lung heights, heart size).

    ``heart`` is ``normal``, ``mild`` or ``moderate`` (cardiomegaly widens the cardiac
    silhouette box, and the drawing follows the box).
    """
    sx = rng.uniform(0.90, 1.04)
    sy = rng.uniform(0.90, 1.04)
    dx = rng.uniform(-0.035, 0.035)
    dy = rng.uniform(-0.03, 0.03)
    right_bottom = 0.78 + rng.uniform(-0.02, 0.02)
    left_bottom = 0.80 + rng.uniform(-0.02, 0.02)
    heart_w = 0.17 * rng.uniform(0.95, 1.05) * HEART_ENLARGEMENT[heart]
    heart_h = 0.14 * rng.uniform(0.96, 1.04) * (1 + 0.25 * (HEART_ENLARGEMENT[heart] - 1))

    # Canonical layout in unit coordinates (u across, v down).
    unit: dict[str, tuple[float, float, float, float]] = {}
    unit.update(_lung_subboxes("right", (0.10, 0.13, 0.46, right_bottom)))
    unit.update(_lung_subboxes("left", (0.54, 0.13, 0.90, left_bottom)))
    hx, hy = 0.535, 0.78 - heart_h
    heart_box = (hx - heart_w, hy - heart_h, hx + heart_w, hy + heart_h)
    unit.update(
        {
            "trachea": (0.47, 0.03, 0.53, 0.30),
            "spine": (0.45, -0.02, 0.55, 0.93),
            "right clavicle": (0.14, 0.10, 0.48, 0.19),
            "left clavicle": (0.52, 0.10, 0.86, 0.19),
            "aortic arch": (0.50, 0.24, 0.61, 0.33),
            "mediastinum": (min(0.38, heart_box[0]), 0.12, max(0.64, heart_box[2]), heart_box[3]),
            "upper mediastinum": (0.41, 0.12, 0.59, 0.36),
            "svc": (0.41, 0.20, 0.48, 0.44),
            "cardiac silhouette": heart_box,
            "cavoatrial junction": (0.41, 0.42, 0.48, 0.50),
            "right atrium": (
                heart_box[0],
                heart_box[1] + 0.12 * (heart_box[3] - heart_box[1]),
                heart_box[0] + 0.36 * (heart_box[2] - heart_box[0]),
                heart_box[3],
            ),
            "carina": (0.46, 0.27, 0.54, 0.34),
            "abdomen": (0.08, 0.80, 0.92, 1.02),
        }
    )

    def to_pixels(b: tuple[float, float, float, float]) -> Box:
        u1, v1, u2, v2 = b
        x1 = (0.5 + (u1 - 0.5) * sx + dx) * width
        x2 = (0.5 + (u2 - 0.5) * sx + dx) * width
        y1 = (0.5 + (v1 - 0.5) * sy + dy) * height
        y2 = (0.5 + (v2 - 0.5) * sy + dy) * height
        x1, x2 = min(max(math.floor(x1), 0), width - 1), min(max(math.ceil(x2), 1), width)
        y1, y2 = min(max(math.floor(y1), 0), height - 1), min(max(math.ceil(y2), 1), height)
        return (x1, y1, max(x2, x1 + 1), max(y2, y1 + 1))

    boxes = {name: to_pixels(unit[name]) for name in REGIONS}
    body = (
        (0.5 + dx) * width,
        (0.56 + dy) * height,
        0.47 * sx * width,
        0.62 * sy * height,
    )
    return Anatomy(height=height, width=width, boxes=boxes, body=body)
