"""Patients, studies and images of the synthetic MIMIC-CXR cohort, with their splits.

Ids follow the real shapes: ``subject_id`` 8 digits starting with 1, ``study_id`` 8 digits
starting with 5, ``dicom_id`` five groups of 8 hex digits joined by ``-``. Every entity has
its own random stream (``[seed, tag, index]``), so one entity's draws never shift another's.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .findings import Finding, Sentence, sample_findings, study_sentences

STUDIES_PER_PATIENT_P = (0.45, 0.35, 0.20)  # 1, 2 or 3 studies
AP_FRACTION = 0.3
IMAGENOME_FRACTIONS = (0.7, 0.1, 0.2)  # train / valid / test, patient level
OFFICIAL_FRACTIONS = (0.8, 0.1, 0.1)  # train / validate / test, an independent draw


@dataclass(frozen=True)
class Study:
    subject_id: int
    study_id: int
    index: int  # position in the cohort, for the study's random stream
    order: int  # 1-based order among the patient's studies
    date: int  # yyyymmdd (MIMIC's shifted years)
    time: float  # hhmmss.fff
    view: str  # PA or AP (the frontal image's ViewPosition)
    has_lateral: bool
    gender: str
    age_decile: str
    findings: tuple[Finding, ...]
    sentences: tuple[Sentence, ...]

    @property
    def heart(self) -> str:
        for f in self.findings:
            if f.kind == "cardiomegaly":
                return f.severity
        return "normal"


@dataclass(frozen=True)
class ImageRecord:
    dicom_id: str
    study: Study
    index: int  # position in the cohort, for the image's random stream
    view: str  # PA, AP or LATERAL

    @property
    def frontal(self) -> bool:
        return self.view in ("PA", "AP")

    def rel_path(self, suffix: str) -> str:
        sid = str(self.study.subject_id)
        return f"files/p{sid[:2]}/p{sid}/s{self.study.study_id}/{self.dicom_id}{suffix}"


def _unique_ints(rng: np.random.Generator, n: int, low: int, high: int) -> list[int]:
    values: set[int] = set()
    while len(values) < n:
        values.update(int(v) for v in rng.integers(low, high, size=n - len(values)))
    return sorted(values)


def _dicom_id(rng: np.random.Generator) -> str:
    hexes = rng.bytes(20).hex()
    return "-".join(hexes[i : i + 8] for i in range(0, 40, 8))


def sample_cohort(
    seed: int, n_patients: int, lateral_fraction: float
) -> tuple[list[Study], list[ImageRecord]]:
    rng = np.random.default_rng([seed, 1])
    subjects = _unique_ints(rng, n_patients, 10_000_000, 20_000_000)
    n_studies = [int(rng.choice(3, p=STUDIES_PER_PATIENT_P)) + 1 for _ in subjects]
    study_ids = [int(v) for v in rng.permutation(_unique_ints(rng, sum(n_studies), 50_000_000, 60_000_000))]
    studies: list[Study] = []
    images: list[ImageRecord] = []
    for p, subject_id in enumerate(subjects):
        prng = np.random.default_rng([seed, 2, p])
        gender = "F" if prng.random() < 0.5 else "M"
        decade = int(prng.integers(2, 9)) * 10
        year = int(prng.integers(2110, 2200))
        day = int(prng.integers(0, 200))
        for order in range(1, n_studies[p] + 1):
            index = len(studies)
            srng = np.random.default_rng([seed, 3, index])
            day += int(srng.integers(1, 120))
            month, dom = 1 + (day // 28) % 12, 1 + day % 28
            findings = tuple(sample_findings(srng))
            study = Study(
                subject_id=subject_id,
                study_id=study_ids[index],
                index=index,
                order=order,
                date=year * 10000 + month * 100 + dom,
                time=float(
                    f"{srng.integers(0, 24):02d}{srng.integers(0, 60):02d}{srng.integers(0, 60):02d}"
                    f".{srng.integers(0, 1000):03d}"
                ),
                view="AP" if srng.random() < AP_FRACTION else "PA",
                has_lateral=bool(srng.random() < lateral_fraction),
                gender=gender,
                age_decile=f"{decade}-{decade + 10}",
                findings=findings,
                sentences=tuple(study_sentences(list(findings))),
            )
            studies.append(study)
            views = [study.view] + (["LATERAL"] if study.has_lateral else [])
            for view in views:
                images.append(ImageRecord(_dicom_id(srng), study, len(images), view))
    return studies, images


def patient_splits(subjects: list[int], rng: np.random.Generator, names, fractions) -> dict[int, str]:
    """Patient-level split: each of ``names`` gets at least one patient."""
    order = [int(s) for s in rng.permutation(subjects)]
    n = len(order)
    counts = [max(1, int(round(f * n))) for f in fractions[1:]]
    first = n - sum(counts)
    bounds = [first] + counts
    out, k = {}, 0
    for name, count in zip(names, bounds):
        for s in order[k : k + count]:
            out[s] = name
        k += count
    return out
