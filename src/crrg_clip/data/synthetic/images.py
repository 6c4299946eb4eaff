"""Draw chest-radiograph-like 8-bit images from an ``Anatomy`` and a list of findings.

Intensities are worked out in [0, 1] (bright = dense): dark lung fields, bright
mediastinum, heart, spine and clavicles, a bright abdomen under domed hemidiaphragms.
Findings add strong, local evidence inside their regions' boxes: opacities and nodules
are bright, effusions fill the costophrenic angle with a bright meniscus, a pneumothorax
is a dark rim without lung markings bounded by a thin bright pleural line, cardiomegaly
is the wider cardiac silhouette the anatomy already carries.
"""

from __future__ import annotations

import numpy as np
from PIL import Image
from scipy import ndimage

from .anatomy import Anatomy, Box
from .findings import Finding

FIELD_OF_VIEW_MM = 430.0  # image height in mm, for drawing nodules at their stated size

_LUNG = 0.17
_SOFT_TISSUE = 0.42
_MEDIASTINUM = 0.66
_HEART = 0.76
_FLUID = 0.70


def _grid(height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    return yy + 0.5, xx + 0.5  # (H, W) pixel centres


def _window(box: Box, height: int, width: int, pad: int = 2) -> tuple[slice, slice]:
    """The array slices covering ``box`` plus ``pad`` pixels, clipped to the image."""
    x1, y1, x2, y2 = box
    return (
        slice(max(0, int(y1) - pad), min(height, int(np.ceil(y2)) + pad)),
        slice(max(0, int(x1) - pad), min(width, int(np.ceil(x2)) + pad)),
    )


def lung_geometry(yy: np.ndarray, xx: np.ndarray, box: Box, side: str):
    """Mask of one lung (rounded apex, domed base, deep lateral costophrenic angle).

    Returns ``(mask, top, lateral)``: the boolean mask, the apex boundary per column and
    the distance of each pixel from the lung's lateral edge (pixels).
    """
    x1, y1, x2, y2 = box
    w, h = x2 - x1, y2 - y1
    a = (xx - (x1 + x2) / 2) / (w / 2)  # -1..1 across the lung
    top = y1 + 0.28 * h * (1 - np.sqrt(np.clip(1 - a**2, 0, 1)))
    medial_sign = 1.0 if side == "right" else -1.0  # patient right = image left, medial at x2
    t = a - 0.25 * medial_sign
    bottom = y2 - 0.13 * h * np.clip(1 - t**2, 0, 1)
    mask = (np.abs(a) <= 1) & (yy >= top) & (yy <= bottom)
    lateral = (xx - x1) if side == "right" else (x2 - xx)
    return mask, top, lateral


def _gaussian(yy, xx, cx, cy, sx, sy) -> np.ndarray:
    return np.exp(-0.5 * (((xx - cx) / sx) ** 2 + ((yy - cy) / sy) ** 2))


def _smooth_noise(rng: np.random.Generator, shape: tuple[int, int], sigma: float) -> np.ndarray:
    """Smooth noise in about -1..1: drawn at 1/4 resolution, blurred, upsampled."""
    small = (max(2, shape[0] // 4), max(2, shape[1] // 4))
    field = ndimage.gaussian_filter(rng.standard_normal(small, dtype=np.float32), max(0.5, sigma / 4))
    field = np.asarray(Image.fromarray(field, mode="F").resize((shape[1], shape[0]), Image.BILINEAR))
    return field / (np.abs(field).max() + 1e-6)


def _draw_anatomy(anatomy: Anatomy, yy, xx, rng) -> tuple[np.ndarray, dict]:
    h, w = anatomy.height, anatomy.width
    img = np.full((h, w), 0.05, np.float32)
    bcx, bcy, bax, bay = anatomy.body
    body = ((xx - bcx) / bax) ** 2 + ((yy - bcy) / bay) ** 2 <= 1
    img[body] = _SOFT_TISSUE
    abdomen = anatomy.box("abdomen")
    img[body & (yy >= abdomen[1])] = 0.56

    for name in ("upper mediastinum", "mediastinum"):
        img[_window(anatomy.box(name), h, w, pad=0)] = _MEDIASTINUM

    texture = _smooth_noise(rng, (h, w), max(1.0, h / 60))
    lungs = {}
    for side in ("right", "left"):
        box = anatomy.box(f"{side} lung")
        win = _window(box, h, w)
        wy, wx = yy[win], xx[win]
        mask, top, lateral = lung_geometry(wy, wx, box, side)
        lungs[side] = (win, mask, top, lateral)
        x1, y1, x2, y2 = box
        lw, lh = x2 - x1, y2 - y1
        medial_closeness = 1 - np.clip(lateral / lw, 0, 1)
        # Posterior ribs: curved bands across the lung field.
        phase = (wy - y1 + 0.35 * ((wx - (x1 + x2) / 2) ** 2) / lw) / (lh / 8.5)
        ribs = np.clip(np.sin(2 * np.pi * phase) - 0.35, 0, None)
        value = _LUNG + 0.07 * medial_closeness + 0.06 * ribs + 0.025 * texture[win]
        img[win][mask] = value[mask]

    heart = anatomy.box("cardiac silhouette")
    win = _window(heart, h, w)
    hx1, hy1, hx2, hy2 = heart
    heart_mask = ((xx[win] - (hx1 + hx2) / 2) / ((hx2 - hx1) / 2)) ** 2 + (
        (yy[win] - (hy1 + hy2) / 2) / ((hy2 - hy1) / 2)
    ) ** 2 <= 1
    img[win][heart_mask] = _HEART

    arch = anatomy.box("aortic arch")
    win = _window(arch, h, w)
    ax1, ay1, ax2, ay2 = arch
    knob = _gaussian(yy[win], xx[win], (ax1 + ax2) / 2, (ay1 + ay2) / 2, (ax2 - ax1) / 2.5, (ay2 - ay1) / 2.5)
    img[win] = np.maximum(img[win], 0.74 * (knob > 0.35))

    spine_box = anatomy.box("spine")
    win = _window(spine_box, h, w, pad=0)
    sy1, sy2 = spine_box[1], spine_box[3]
    spine = body[win]
    vertebrae = 0.05 * (np.sin(2 * np.pi * (yy[win] - sy1) / max(4.0, (sy2 - sy1) / 17)) > 0.6)
    img[win][spine] = np.maximum(img[win][spine], 0.64) + vertebrae[spine] + 0.04

    img[_window(anatomy.box("trachea"), h, w, pad=0)] = 0.36

    for side in ("right", "left"):
        clavicle = anatomy.box(f"{side} clavicle")
        win = _window(clavicle, h, w, pad=0)
        wy, wx = yy[win], xx[win]
        cx1, cy1, cx2, cy2 = clavicle
        # The clavicle rises from its medial end to its lateral end.
        if side == "right":
            mx, my, lx, ly = cx2, cy2 - 0.3 * (cy2 - cy1), cx1, cy1 + 0.3 * (cy2 - cy1)
        else:
            mx, my, lx, ly = cx1, cy2 - 0.3 * (cy2 - cy1), cx2, cy1 + 0.3 * (cy2 - cy1)
        tt = np.clip(
            ((wx - mx) * (lx - mx) + (wy - my) * (ly - my)) / ((lx - mx) ** 2 + (ly - my) ** 2), 0, 1
        )
        dist = np.hypot(wx - (mx + tt * (lx - mx)), wy - (my + tt * (ly - my)))
        img[win] += 0.22 * (dist <= 0.22 * (cy2 - cy1))
    return img, lungs


def _draw_finding(img, f: Finding, anatomy: Anatomy, lungs: dict, yy, xx, rng) -> None:
    h = anatomy.height
    if f.kind == "cardiomegaly":
        return  # the anatomy's cardiac silhouette box is already enlarged
    win, mask, top, lateral = lungs[f.side]
    sub = img[win]  # a view: drawing into it draws into the image
    wy, wx = yy[win], xx[win]
    lx1, ly1, lx2, ly2 = anatomy.box(f"{f.side} lung")
    lw, lh = lx2 - lx1, ly2 - ly1
    if f.kind in ("opacity", "consolidation", "atelectasis", "nodule"):
        zx1, zy1, zx2, zy2 = anatomy.box(f"{f.side} {f.zone} lung zone")
        zw, zh = zx2 - zx1, zy2 - zy1
        cx = (zx1 + zx2) / 2 + f.offset[0] * 0.15 * zw
        cy = (zy1 + zy2) / 2 + f.offset[1] * 0.12 * zh
        if f.kind == "opacity":
            patch = 0.75 + 0.25 * _smooth_noise(rng, sub.shape, max(1.0, h / 50))
            sub += 0.38 * _gaussian(wy, wx, cx, cy, 0.22 * zw, 0.26 * zh) * patch * mask
        elif f.kind == "consolidation":
            sub += 0.48 * np.clip(1.3 * _gaussian(wy, wx, cx, cy, 0.26 * zw, 0.30 * zh), 0, 1) * mask
        elif f.kind == "atelectasis":
            slope = 0.12 * f.offset[0]
            dist = np.abs(wy - (cy + slope * (wx - cx)))
            thickness = max(1.5, 0.012 * h)
            along = np.clip(1 - np.abs(wx - cx) / (0.38 * zw), 0, 1)
            sub += 0.42 * np.exp(-0.5 * (dist / thickness) ** 2) * np.sqrt(along) * mask
        else:
            radius = f.size_mm / 2 / (FIELD_OF_VIEW_MM / h)
            d = np.hypot(wx - cx, wy - cy)
            sub += 0.42 * np.clip(radius + 0.75 - d, 0, 1)
        return
    if f.kind == "effusion":
        q = 1 - np.clip(lateral / lw, 0, 1)  # 1 at the lateral edge, 0 at the medial edge
        base = 0.03 if f.severity == "small" else 0.18
        depth = (base + 0.20 * q**2) * lh
        fluid = mask & (wy >= ly2 - depth)
        sub[fluid] = _FLUID + 0.02 * rng.standard_normal(int(fluid.sum()), dtype=np.float32)
        return
    if f.kind == "pneumothorax":
        small = f.severity == "small"
        extent = (0.34 if small else 0.62) * lh
        gap = (0.17 if small else 0.30) * lw * np.clip(1 - (wy - ly1) / extent, 0, 1)
        cap = (0.09 if small else 0.15) * lh
        pneumo = mask & (wy < ly1 + extent) & ((lateral < gap) | ((wy < top + cap) & (lateral < 0.7 * lw)))
        sub[pneumo] = 0.05
        line = ndimage.binary_dilation(pneumo, iterations=max(1, h // 200)) & mask & ~pneumo
        sub[line] = 0.55
        return
    raise ValueError(f"unknown finding kind {f.kind!r}")


def _finish(img: np.ndarray, rng: np.random.Generator, blur: float) -> np.ndarray:
    img = ndimage.gaussian_filter(img, blur, truncate=3.0)
    gain, offset = rng.uniform(0.93, 1.07), rng.uniform(-0.03, 0.03)
    noise = rng.standard_normal(img.shape, dtype=np.float32)
    noise *= 0.018 * 255
    img *= 255 * gain
    img += noise
    img += 255 * offset + 0.5
    np.clip(img, 0, 255, out=img)
    return img.astype(np.uint8)


def render_frontal(
    anatomy: Anatomy,
    findings: list[Finding],
    rng: np.random.Generator,
    *,
    opacity_boxes: tuple[Box, ...] = (),
) -> np.ndarray:
    """A frontal radiograph, ``uint8 (H, W)``; ``opacity_boxes`` add opacities confined to boxes (RSNA)."""
    # Separate streams: adding a finding never changes the rest of the image.
    anatomy_rng, finding_rng, finish_rng = rng.spawn(3)
    yy, xx = _grid(anatomy.height, anatomy.width)
    img, lungs = _draw_anatomy(anatomy, yy, xx, anatomy_rng)
    for f in findings:
        _draw_finding(img, f, anatomy, lungs, yy, xx, finding_rng)
    for box in opacity_boxes:
        x1, y1, x2, y2 = box
        win = _window(box, anatomy.height, anatomy.width, pad=0)
        blob = _gaussian(yy[win], xx[win], (x1 + x2) / 2, (y1 + y2) / 2, (x2 - x1) / 4.5, (y2 - y1) / 4.5)
        patch = 0.8 + 0.2 * _smooth_noise(finding_rng, blob.shape, max(1.0, anatomy.height / 50))
        img[win] += 0.40 * np.clip(1.4 * blob, 0, 1) * patch
    return _finish(img, finish_rng, blur=max(0.6, anatomy.height / 320))


def render_lateral(height: int, width: int, findings: list[Finding], rng: np.random.Generator) -> np.ndarray:
    """A lateral view (anterior on the image left): one lung field, heart in front, spine behind."""
    yy, xx = _grid(height, width)
    s, dx, dy = rng.uniform(0.92, 1.04), rng.uniform(-0.03, 0.03), rng.uniform(-0.03, 0.03)
    u = (xx / width - 0.5 - dx) / s + 0.5
    v = (yy / height - 0.5 - dy) / s + 0.5
    img = np.full((height, width), 0.05, np.float32)
    body = ((u - 0.5) / 0.44) ** 2 + ((v - 0.56) / 0.60) ** 2 <= 1
    img[body] = _SOFT_TISSUE
    lung = (((u - 0.50) / 0.30) ** 2 + ((v - 0.46) / 0.36) ** 2 <= 1) & (
        v < 0.80 - 0.05 * np.cos((u - 0.5) * 3)
    )
    img[lung] = _LUNG + 0.03 * _smooth_noise(rng, img.shape, max(1.0, height / 60))[lung]
    heart_scale = 1.0
    for f in findings:
        if f.kind == "cardiomegaly":
            heart_scale = 1.2 if f.severity == "mild" else 1.35
    heart = ((u - 0.36) / (0.14 * heart_scale)) ** 2 + ((v - 0.64) / 0.15) ** 2 <= 1
    img[heart] = 0.62
    spine = (u > 0.76) & (u < 0.86) & body
    img[spine] = 0.66 + 0.05 * (np.sin(2 * np.pi * v[spine] * 17) > 0.6)
    img[body & (v >= 0.82)] = 0.56
    for f in findings:
        if f.kind == "effusion":  # fluid in the posterior costophrenic sulcus
            img[lung & (v > (0.74 if f.severity == "small" else 0.64)) & (u > 0.55)] = _FLUID
        elif f.kind in ("opacity", "consolidation"):
            cy = {"upper": 0.25, "mid": 0.45, "lower": 0.65}[f.zone]
            img += 0.3 * _gaussian(v, u, 0.55, cy, 0.08, 0.07) * lung
    return _finish(img, rng, blur=max(0.6, height / 320))
