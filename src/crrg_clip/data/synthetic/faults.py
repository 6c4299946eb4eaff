"""Which studies get a report variant and which items carry a planted fault.

Every fault sits on its own image (the report fault on its own study, none of whose images
carries another fault). Each is listed in the manifest as ``{dataset, item_id, kind}``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .cohort import ImageRecord, Study
from .reports import VARIANTS

VARIANT_RATE = 0.03  # per header variant, of all studies (at least one each)

# kind -> (dataset, preferred ImaGenome split of the image)
IMAGE_FAULTS = {
    "truncated_jpg": ("mimic-cxr-jpg", "train"),
    "missing_jpg": ("mimic-cxr-jpg", "train"),
    "negative_box_coordinate": ("chest-imagenome", "train"),
    "zero_area_box": ("chest-imagenome", "train"),
    "gold_set_image": ("chest-imagenome", "test"),
}
REPORT_FAULT = ("mimic-cxr-reports", "report_without_findings")
RSNA_FAULT = ("rsna", "unreadable_dicom")
# The boxes the two scene-graph faults touch (neither region gets a sentence).
NEGATIVE_BOX_REGION = "spine"  # its top touches the image edge: clipping restores it
ZERO_AREA_REGION = "carina"


@dataclass(frozen=True)
class FaultPlan:
    no_findings_study: int | None  # study_id
    image_faults: dict[str, str]  # dicom_id -> kind
    rsna_unreadable: str | None  # patientId
    variants: dict[int, str]  # study_id -> report variant

    def records(self, rsna_fault_id: str | None) -> list[dict]:
        out = []
        if self.no_findings_study is not None:
            out.append(
                {"dataset": REPORT_FAULT[0], "item_id": str(self.no_findings_study), "kind": REPORT_FAULT[1]}
            )
        for dicom_id, kind in self.image_faults.items():
            out.append({"dataset": IMAGE_FAULTS[kind][0], "item_id": dicom_id, "kind": kind})
        if rsna_fault_id is not None:
            out.append({"dataset": RSNA_FAULT[0], "item_id": rsna_fault_id, "kind": RSNA_FAULT[1]})
        return sorted(out, key=lambda r: (r["dataset"], r["kind"], r["item_id"]))


def plan_faults(
    seed: int,
    studies: list[Study],
    images: list[ImageRecord],
    imagenome_split: dict[int, str],
    rsna_negatives: list[str],
    plant_faults: bool,
) -> FaultPlan:
    rng = np.random.default_rng([seed, 5])
    frontal = [im for im in images if im.frontal]
    no_findings_study = None
    image_faults: dict[str, str] = {}
    rsna_unreadable = None
    if plant_faults:
        shuffled = [frontal[i] for i in rng.permutation(len(frontal))]
        test_single = [
            im
            for im in shuffled
            if imagenome_split[im.study.subject_id] == "test" and not im.study.has_lateral
        ]
        no_findings_study = (test_single or shuffled)[0].study.study_id
        used = {no_findings_study}
        for kind, (_, split) in IMAGE_FAULTS.items():
            free = [im for im in shuffled if im.study.study_id not in used]
            preferred = [im for im in free if imagenome_split[im.study.subject_id] == split]
            if not free:
                raise ValueError("too few studies to plant every fault; raise n_patients")
            chosen = (preferred or free)[0]
            image_faults[chosen.dicom_id] = kind
            used.add(chosen.study.study_id)
        rsna_unreadable = rsna_negatives[int(rng.integers(len(rsna_negatives)))]

    variants: dict[int, str] = {}
    candidates = [
        s for s in (studies[i] for i in rng.permutation(len(studies))) if s.study_id != no_findings_study
    ]
    n_each = max(1, int(round(VARIANT_RATE * len(studies))))
    for variant in VARIANTS:
        want = {
            "view_header_portable": lambda s: s.view == "AP",
            "view_header_pa_and_lateral": lambda s: s.view == "PA" and s.has_lateral,
        }.get(variant, lambda s: True)
        free = [s for s in candidates if s.study_id not in variants]
        picked = [s for s in free if want(s)][:n_each]
        picked += [s for s in free if s not in picked][: n_each - len(picked)]
        for s in picked:
            variants[s.study_id] = variant
    return FaultPlan(no_findings_study, image_faults, rsna_unreadable, variants)
