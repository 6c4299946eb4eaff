"""Finding types, the regions they occupy, and the sentences a report says about them.

Each finding's sentence is fixed by its type, side, zone and severity (no random wording),
so a model that sees where the image evidence is can learn which region gets which
sentence. ``study_sentences`` adds the always-present normal statements.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from crrg_clip.regions import REGION_INDEX

KINDS = ("opacity", "consolidation", "atelectasis", "nodule", "effusion", "pneumothorax", "cardiomegaly")
KIND_WEIGHTS = (0.20, 0.12, 0.13, 0.12, 0.18, 0.10, 0.15)
N_FINDINGS_P = (0.14, 0.36, 0.32, 0.18)  # P(0), P(1), P(2), P(3) findings per study
NODULE_SIZES_MM = (6, 8, 12, 15, 22)
CHEXPERT_LABELS = (
    "Atelectasis",
    "Cardiomegaly",
    "Consolidation",
    "Edema",
    "Enlarged Cardiomediastinum",
    "Fracture",
    "Lung Lesion",
    "Lung Opacity",
    "No Finding",
    "Pleural Effusion",
    "Pleural Other",
    "Pneumonia",
    "Pneumothorax",
    "Support Devices",
)

_ZONE_TEXT = {"upper": "upper lung", "mid": "mid lung", "lower": "lung base"}
_PARENCHYMAL = ("opacity", "consolidation", "atelectasis", "nodule")


@dataclass(frozen=True)
class Finding:
    """One abnormality: where it is, how severe, and the drawing offsets inside its zone."""

    kind: str
    side: str | None = None  # "right" / "left" (patient side); None for cardiomegaly
    zone: str | None = None  # "upper" / "mid" / "lower" for parenchymal findings
    severity: str = "mild"  # "mild"/"moderate" (or "small"/"moderate" for pleural)
    size_mm: int = 0  # nodules
    offset: tuple[float, float] = (0.0, 0.0)  # position jitter inside the zone, -1..1


@dataclass(frozen=True)
class Sentence:
    """A report sentence and the regions (Chest ImaGenome bbox names) it attaches to."""

    text: str
    regions: tuple[str, ...]
    attributes: tuple[str, ...]
    abnormal: bool
    chexpert: dict[str, float] = field(default_factory=dict)
    severity: str = ""

    @property
    def primary_region(self) -> str:
        return self.regions[0]


def sample_findings(rng: np.random.Generator) -> list[Finding]:
    """0-3 findings that do not collide (one per lung zone, pleural space or heart)."""
    n = int(rng.choice(len(N_FINDINGS_P), p=N_FINDINGS_P))
    findings: list[Finding] = []
    used: set[tuple] = set()
    attempts = 0
    while len(findings) < n and attempts < 50:
        attempts += 1
        kind = str(rng.choice(KINDS, p=KIND_WEIGHTS))
        side = str(rng.choice(("right", "left")))
        offset = (float(rng.uniform(-1, 1)), float(rng.uniform(-1, 1)))
        if kind == "cardiomegaly":
            key: tuple = ("heart",)
            finding = Finding(kind, severity=str(rng.choice(("mild", "moderate"))))
        elif kind in ("effusion", "pneumothorax"):
            key = (kind, side)
            finding = Finding(kind, side, severity=str(rng.choice(("small", "moderate"))), offset=offset)
        else:
            zones = {"atelectasis": ("lower",), "nodule": ("upper", "mid")}.get(
                kind, ("upper", "mid", "lower")
            )
            zone = str(rng.choice(zones))
            key = ("zone", side, zone)
            size = int(rng.choice(NODULE_SIZES_MM)) if kind == "nodule" else 0
            finding = Finding(kind, side, zone, severity="mild", size_mm=size, offset=offset)
        # Pleural findings and zone findings on the same side's base/apex would overlap.
        blocked = {key}
        if kind == "effusion":
            blocked.add(("zone", side, "lower"))
        if kind == "pneumothorax":
            blocked.add(("zone", side, "upper"))
        if key[0] == "zone" and key[2] == "lower":
            blocked.add(("effusion", side))
        if key[0] == "zone" and key[2] == "upper":
            blocked.add(("pneumothorax", side))
        if blocked & used:
            continue
        used |= blocked
        findings.append(finding)
    return findings


def _size_text(size_mm: int) -> str:
    return f"{size_mm} mm" if size_mm < 15 else f"{size_mm / 10:.1f} cm"


def finding_sentence(f: Finding) -> Sentence:
    """The sentence (and its regions) a report gives one finding."""
    side = f.side or ""
    if f.kind in _PARENCHYMAL:
        where = f"{side} {_ZONE_TEXT[f.zone]}"
        # The sentence names its zone, so it attaches to that zone only. Attached to the whole
        # lung as well, it made "right lung"'s phrase the concatenation of every finding of that
        # lung (37 distinct phrases in the demo's 300 training images, 21 seen once) that a
        # region-wise generator could not learn: it wrote "The right lung is clear." above the
        # zone's finding sentence (benchmarks/results/rrg_signal.md).
        regions = (f"{side} {f.zone} lung zone",)
        if f.kind == "opacity":
            return Sentence(
                f"There is a patchy opacity in the {where}.",
                regions,
                ("anatomicalfinding|yes|lung opacity", "nlp|yes|abnormal"),
                True,
                {"Lung Opacity": 1.0},
            )
        if f.kind == "consolidation":
            return Sentence(
                f"Focal consolidation in the {where} is concerning for pneumonia.",
                regions,
                (
                    "anatomicalfinding|yes|consolidation",
                    "anatomicalfinding|yes|lung opacity",
                    "disease|yes|pneumonia",
                    "nlp|yes|abnormal",
                ),
                True,
                {"Consolidation": 1.0, "Lung Opacity": 1.0, "Pneumonia": -1.0},
            )
        if f.kind == "atelectasis":
            return Sentence(
                f"Linear opacity at the {where} likely reflects atelectasis.",
                regions,
                (
                    "anatomicalfinding|yes|atelectasis",
                    "anatomicalfinding|yes|lung opacity",
                    "nlp|yes|abnormal",
                ),
                True,
                {"Atelectasis": 1.0, "Lung Opacity": 1.0},
            )
        return Sentence(
            f"A {_size_text(f.size_mm)} nodule is seen in the {where}.",
            regions,
            ("anatomicalfinding|yes|mass/nodule (not otherwise specified)", "nlp|yes|abnormal"),
            True,
            {"Lung Lesion": 1.0},
        )
    if f.kind == "effusion":
        attrs = ("anatomicalfinding|yes|pleural effusion", "nlp|yes|abnormal")
        if f.severity == "small":
            return Sentence(
                f"Small {side} pleural effusion is present.",
                (f"{side} costophrenic angle",),
                attrs,
                True,
                {"Pleural Effusion": 1.0},
                "small",
            )
        return Sentence(
            f"Moderate {side} pleural effusion with blunting of the costophrenic angle.",
            (f"{side} costophrenic angle", f"{side} lower lung zone"),
            attrs,
            True,
            {"Pleural Effusion": 1.0},
            "moderate",
        )
    if f.kind == "pneumothorax":
        attrs = ("anatomicalfinding|yes|pneumothorax", "nlp|yes|abnormal")
        if f.severity == "small":
            return Sentence(
                f"Small {side} apical pneumothorax is seen.",
                (f"{side} apical zone", f"{side} lung"),
                attrs,
                True,
                {"Pneumothorax": 1.0},
                "small",
            )
        return Sentence(
            f"There is a moderate {side} pneumothorax.",
            (f"{side} apical zone", f"{side} upper lung zone", f"{side} lung"),
            attrs,
            True,
            {"Pneumothorax": 1.0},
            "moderate",
        )
    if f.kind == "cardiomegaly":
        attrs = ("anatomicalfinding|yes|enlarged cardiac silhouette", "nlp|yes|abnormal")
        text = (
            "The heart size is mildly enlarged."
            if f.severity == "mild"
            else "Moderate cardiomegaly is present."
        )
        return Sentence(text, ("cardiac silhouette",), attrs, True, {"Cardiomegaly": 1.0}, f.severity)
    raise ValueError(f"unknown finding kind {f.kind!r}")


def _normal(text: str, regions: tuple[str, ...], attribute: str, chexpert: dict[str, float]) -> Sentence:
    return Sentence(text, regions, (attribute, "nlp|yes|normal"), False, chexpert)


def study_sentences(findings: list[Finding]) -> list[Sentence]:
    """All FINDINGS sentences of a study, in anatomical order (by their first region)."""
    sentences = [finding_sentence(f) for f in findings]
    parenchymal_sides = {f.side for f in findings if f.kind in _PARENCHYMAL}
    effusion_sides = {f.side for f in findings if f.kind == "effusion"}
    pneumothorax = any(f.kind == "pneumothorax" for f in findings)
    cardiomegaly = any(f.kind == "cardiomegaly" for f in findings)

    # Normal statements are made per side, attached to that side's regions, so a region
    # carries everything needed to say them (a bilateral "The lungs are clear." would depend
    # on the other lung, which a region-wise generator cannot see).
    pneumothorax_sides = {f.side for f in findings if f.kind == "pneumothorax"}
    for side in ("right", "left"):
        if side not in parenchymal_sides:
            sentences.append(_normal(f"The {side} lung is clear.", (f"{side} lung",),
                                     "anatomicalfinding|no|lung opacity", {}))
        if side not in pneumothorax_sides:
            sentences.append(_normal(f"No {side} pneumothorax is seen.", (f"{side} lung", f"{side} apical zone"),
                                     "anatomicalfinding|no|pneumothorax",
                                     {} if pneumothorax else {"Pneumothorax": 0.0}))
        if side not in effusion_sides:
            sentences.append(_normal(f"No {side} pleural effusion.", (f"{side} costophrenic angle",),
                                     "anatomicalfinding|no|pleural effusion",
                                     {} if effusion_sides else {"Pleural Effusion": 0.0}))
    if not cardiomegaly:
        sentences.append(
            _normal(
                "The cardiac silhouette is within normal limits.",
                ("cardiac silhouette",),
                "anatomicalfinding|no|enlarged cardiac silhouette",
                {"Cardiomegaly": 0.0},
            )
        )
    sentences.append(
        _normal(
            "The mediastinal and hilar contours are normal.",
            ("mediastinum", "right hilar structures", "left hilar structures"),
            "anatomicalfinding|no|mediastinal widening",
            {},
        )
    )
    # "right chest wall" / "left chest wall" are real bbox names without a box.
    sentences.append(
        _normal(
            "No acute osseous abnormality.",
            ("spine", "right chest wall", "left chest wall"),
            "anatomicalfinding|no|fracture",
            {"Fracture": 0.0},
        )
    )
    # anatomical order: by the first (lowest-index) region a sentence is attached to
    order = {s.text: i for i, s in enumerate(sentences)}
    return sorted(sentences, key=lambda s: (min(REGION_INDEX.get(r, 99) for r in s.regions), order[s.text]))


def chexpert_labels(sentences: list[Sentence]) -> dict[str, float]:
    """CheXpert-style study labels (1.0 / 0.0 / -1.0 / NaN) consistent with the sentences."""
    labels = {name: float("nan") for name in CHEXPERT_LABELS}
    for s in sentences:  # negatives first, then positives/uncertain override them
        for name, value in s.chexpert.items():
            if value == 0.0 and np.isnan(labels[name]):
                labels[name] = 0.0
    for s in sentences:
        for name, value in s.chexpert.items():
            if value != 0.0 and (np.isnan(labels[name]) or labels[name] != 1.0):
                labels[name] = value
    if not any(s.abnormal for s in sentences):
        labels["No Finding"] = 1.0
    return labels


def impression(findings: list[Finding]) -> str:
    """A short IMPRESSION paragraph."""
    if not findings:
        return "No acute cardiopulmonary process."
    words = {
        "opacity": "opacity",
        "consolidation": "pneumonia",
        "atelectasis": "atelectasis",
        "nodule": "pulmonary nodule",
        "effusion": "pleural effusion",
        "pneumothorax": "pneumothorax",
        "cardiomegaly": "cardiomegaly",
    }
    items = []
    for f in findings:
        item = words[f.kind] if f.side is None else f"{f.side} {words[f.kind]}"
        if item not in items:
            items.append(item)
    text = ", ".join(items)
    return text[0].upper() + text[1:] + "."
