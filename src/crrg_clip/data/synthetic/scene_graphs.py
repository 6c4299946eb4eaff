"""Chest ImaGenome silver scene graphs (FORMATS.md section 3) for synthetic images.

``objects`` carry each region's box twice: ``original_*`` in image pixels and ``x1..height``
in the 224 x 224 space (the image letterboxed: scaled by 224 / long side, centred).
``attributes`` hold one entry per mentioned region with the raw report sentences.
"""

from __future__ import annotations

from crrg_clip.regions import REGION_INDEX, REGIONS

from .anatomy import Box
from .findings import Sentence

# Region names the real attributes use that have no box among the 29.
NO_BOX_NAMES = ("right chest wall", "left chest wall")


def _display_name(region: str) -> str:
    return "SVC" if region == "svc" else region[0].upper() + region[1:]


def _synset(region: str) -> str:
    """A stable placeholder concept id per region name (real files carry UMLS CUIs)."""
    code = sum((i + 1) * ord(c) for i, c in enumerate(region)) % 10_000_000
    return f"C{code:07d}"


def to_224(box: Box, height: int, width: int) -> tuple[int, int, int, int]:
    ratio = 224 / max(height, width)
    pad_x = (224 - width * ratio) / 2
    pad_y = (224 - height * ratio) / 2
    x1, y1, x2, y2 = box
    return (
        int(round(x1 * ratio + pad_x)),
        int(round(y1 * ratio + pad_y)),
        int(round(x2 * ratio + pad_x)),
        int(round(y2 * ratio + pad_y)),
    )


def region_object(dicom_id: str, region: str, box: Box, height: int, width: int) -> dict:
    x1, y1, x2, y2 = box
    s1, t1, s2, t2 = to_224(box, height, width)
    return {
        "object_id": f"{dicom_id}_{region}",
        "x1": s1,
        "y1": t1,
        "x2": s2,
        "y2": t2,
        "width": s2 - s1,
        "height": t2 - t1,
        "bbox_name": region,
        "synsets": [_synset(region)],
        "name": _display_name(region),
        "original_x1": x1,
        "original_y1": y1,
        "original_x2": x2,
        "original_y2": y2,
        "original_width": x2 - x1,
        "original_height": y2 - y1,
        "updated": False,
    }


def region_attributes(
    dicom_id: str, study_id: int, sentences: list[Sentence], phrases: tuple[str, ...]
) -> list[dict]:
    """One entry per region that a sentence attaches to, in region order."""
    per_region: dict[str, list[int]] = {}
    for i, s in enumerate(sentences):
        for region in s.regions:
            per_region.setdefault(region, []).append(i)
    entries = []
    order = sorted(per_region, key=lambda r: (REGION_INDEX.get(r, len(REGIONS)), r))
    for region in order:
        idx = per_region[region]
        entries.append(
            {
                region: True,
                "bbox_name": region,
                "synsets": [_synset(region)],
                "name": _display_name(region),
                "attributes": [list(sentences[i].attributes) for i in idx],
                "phrases": [phrases[i] for i in idx],
                "phrase_IDs": [f"{study_id}|{i}" for i in idx],
                "sections": ["finalreport" for _ in idx],
                "comparison_cues": [[] for _ in idx],
                "temporal_cues": [[] for _ in idx],
                "severity_cues": [[sentences[i].severity] if sentences[i].severity else [] for i in idx],
                "texture_cues": [[] for _ in idx],
                "object_id": f"{dicom_id}_{region}",
            }
        )
    return entries


def scene_graph(
    *,
    dicom_id: str,
    subject_id: int,
    study_id: int,
    view: str,
    gender: str,
    age_decile: str,
    reason_for_exam: str,
    study_order: int,
    study_datetime: str,
    boxes: dict[str, Box],
    height: int,
    width: int,
    sentences: list[Sentence],
    phrases: tuple[str, ...],
) -> dict:
    return {
        "image_id": dicom_id,
        "viewpoint": view,
        "patient_id": subject_id,
        "study_id": study_id,
        "gender": gender,
        "age_decile": age_decile,
        "reason_for_exam": reason_for_exam,
        "StudyOrder": study_order,
        "StudyDateTime": study_datetime,
        "objects": [region_object(dicom_id, r, boxes[r], height, width) for r in REGIONS],
        "attributes": region_attributes(dicom_id, study_id, sentences, phrases),
        "relationships": [],
    }
