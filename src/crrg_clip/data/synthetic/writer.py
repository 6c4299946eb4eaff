"""Write the four synthetic datasets in their real layouts and the manifest describing them.

Byte-identical output for a given seed and size: per-entity random streams, gzip with
``mtime=0``, JSON with sorted keys, deterministic JPEG and DICOM encoders.

The manifest (JSON, sorted keys):

- ``format_version``, ``generator``, ``seed``, ``parameters`` (the writer's keyword
  arguments), ``sizes`` (``mimic_image_height``, ``mimic_image_width``, ``rsna_size``);
- ``counts``: what was written (``n_patients``, ``n_studies``, ``n_reports``, ``n_images``,
  ``n_frontal``, ``n_lateral``, ``n_jpg_files``, ``official_split_images``,
  ``imagenome_split_rows``, ``imagenome_split_patients``, ``imagenome_scene_graphs``,
  ``imagenome_images_to_avoid``, ``studies_by_findings_count``, ``findings`` per kind,
  ``rsna_images``, ``rsna_positive``, ``rsna_boxes``, ``rsna_label_rows``, ``rsna_unreadable``);
- ``expected``: what a correct ingest keeps (``reports_with_findings_section`` under the
  MIT-LCP header normalisation, ``mimic_jpg_readable``, ``imagenome_usable`` per split =
  split rows minus gold-set, missing and truncated images, ``imagenome_usable_with_findings_section``,
  ``rsna_readable``, ``rsna_readable_positive``);
- ``faults``: ``[{dataset, item_id, kind}]`` and ``fault_details`` (kind -> what exactly);
- ``report_variants`` (variant -> study_ids) and ``reports`` (study_id -> ``subject_id``,
  ``variant``, ``findings_header``, ``findings`` = the sentences joined by single spaces,
  ``has_findings_section``);
- ``translation_lexicon``: the en -> it word map of the FINDINGS vocabulary.
"""

from __future__ import annotations

import gzip
import io
import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from .anatomy import sample_anatomy
from .cohort import IMAGENOME_FRACTIONS, OFFICIAL_FRACTIONS, ImageRecord, Study, patient_splits, sample_cohort
from .faults import NEGATIVE_BOX_REGION, ZERO_AREA_REGION, FaultPlan, plan_faults
from .findings import CHEXPERT_LABELS, KINDS, chexpert_labels, impression
from .images import render_frontal, render_lateral
from .lexicon import TRANSLATION_LEXICON
from .reports import STANDARD, WITHOUT_FINDINGS_SECTION, NO_FINDINGS, Report, write_report_text
from .rsna import sample_rsna, write_rsna
from .scene_graphs import scene_graph

FORMAT_VERSION = 1
JPEG_QUALITY = 92
IMAGENOME_SPLITS = ("train", "valid", "test")
OFFICIAL_SPLITS = ("train", "validate", "test")
_VIEW_MEANING = {"PA": "postero-anterior", "AP": "antero-posterior", "LATERAL": "lateral"}


def _write_csv_gz(df: pd.DataFrame, path: Path) -> None:
    data = df.to_csv(index=False).encode()
    path.write_bytes(gzip.compress(data, compresslevel=9, mtime=0))


def _jpeg(pixels: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(pixels, mode="L").save(buf, format="JPEG", quality=JPEG_QUALITY)
    return buf.getvalue()


def _exam(study: Study) -> str:
    if study.view == "AP":
        return "CHEST (PORTABLE AP)"
    return "CHEST (PA AND LAT)" if study.has_lateral else "CHEST (PA)"


def _write_reports(root: Path, studies: list[Study], plan: FaultPlan, seed: int) -> dict[int, Report]:
    reports = {}
    for study in studies:
        variant = plan.variants.get(study.study_id, STANDARD)
        if study.study_id == plan.no_findings_study:
            variant = NO_FINDINGS
        report = write_report_text(
            [s.text for s in study.sentences],
            impression(list(study.findings)),
            variant=variant,
            view=study.view,
            has_lateral=study.has_lateral,
            gender=study.gender,
            rng=np.random.default_rng([seed, 11, study.index]),
        )
        sid = str(study.subject_id)
        path = root / "files" / f"p{sid[:2]}" / f"p{sid}" / f"s{study.study_id}.txt"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(report.text)
        reports[study.study_id] = report
    return reports


def _write_mimic_jpg(
    root: Path,
    studies: list[Study],
    images: list[ImageRecord],
    official: dict[int, str],
    plan: FaultPlan,
    seed: int,
    height: int,
    width: int,
) -> dict[str, dict]:
    """Render and write the JPGs and the three CSVs; return each frontal image's boxes."""
    anatomies = {}
    for im in images:
        rng = np.random.default_rng([seed, 10, im.index])
        if im.frontal:
            anatomy = sample_anatomy(rng, height, width, heart=im.study.heart)
            pixels = render_frontal(anatomy, list(im.study.findings), rng)
            anatomies[im.dicom_id] = anatomy.boxes
        else:
            pixels = render_lateral(height, width, list(im.study.findings), rng)
        fault = plan.image_faults.get(im.dicom_id)
        if fault == "missing_jpg":
            continue
        data = _jpeg(pixels)
        if fault == "truncated_jpg":
            data = data[: len(data) // 2]
        path = root / im.rel_path(".jpg")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)

    ordered = sorted(images, key=lambda im: (im.study.subject_id, im.study.study_id, im.dicom_id))
    split = pd.DataFrame(
        {
            "dicom_id": [im.dicom_id for im in ordered],
            "study_id": [im.study.study_id for im in ordered],
            "subject_id": [im.study.subject_id for im in ordered],
            "split": [official[im.study.subject_id] for im in ordered],
        }
    )
    _write_csv_gz(split, root / "mimic-cxr-2.0.0-split.csv.gz")
    metadata = pd.DataFrame(
        {
            "dicom_id": [im.dicom_id for im in ordered],
            "subject_id": [im.study.subject_id for im in ordered],
            "study_id": [im.study.study_id for im in ordered],
            "PerformedProcedureStepDescription": [_exam(im.study) for im in ordered],
            "ViewPosition": [im.view for im in ordered],
            "Rows": [height for _ in ordered],
            "Columns": [width for _ in ordered],
            "StudyDate": [im.study.date for im in ordered],
            "StudyTime": [im.study.time for im in ordered],
            "ProcedureCodeSequence_CodeMeaning": [_exam(im.study) for im in ordered],
            "ViewCodeSequence_CodeMeaning": [_VIEW_MEANING[im.view] for im in ordered],
            "PatientOrientationCodeSequence_CodeMeaning": [
                "Recumbent" if im.view == "AP" else "Erect" for im in ordered
            ],
        }
    )
    _write_csv_gz(metadata, root / "mimic-cxr-2.0.0-metadata.csv.gz")
    rows = []
    for study in sorted(studies, key=lambda s: (s.subject_id, s.study_id)):
        labels = chexpert_labels(list(study.sentences))
        rows.append({"subject_id": study.subject_id, "study_id": study.study_id, **labels})
    chexpert = pd.DataFrame(rows, columns=["subject_id", "study_id", *CHEXPERT_LABELS])
    _write_csv_gz(chexpert, root / "mimic-cxr-2.0.0-chexpert.csv.gz")
    return anatomies


def _datetime(study: Study) -> str:
    d, t = str(study.date), f"{study.time:010.3f}"
    return f"{d[:4]}-{d[4:6]}-{d[6:]} {t[:2]}:{t[2:4]}:{t[4:6]}"


def _write_imagenome(
    root: Path,
    images: list[ImageRecord],
    boxes: dict[str, dict],
    reports: dict[int, Report],
    split_of: dict[int, str],
    plan: FaultPlan,
    height: int,
    width: int,
    seed: int,
) -> dict:
    sg_dir = root / "silver_dataset" / "scene_graph"
    split_dir = root / "silver_dataset" / "splits"
    sg_dir.mkdir(parents=True, exist_ok=True)
    split_dir.mkdir(parents=True, exist_ok=True)
    frontal = [im for im in images if im.frontal]
    for im in frontal:
        study = im.study
        report = reports[study.study_id]
        graph = scene_graph(
            dicom_id=im.dicom_id,
            subject_id=study.subject_id,
            study_id=study.study_id,
            view=im.view,
            gender=study.gender,
            age_decile=study.age_decile,
            reason_for_exam=report.text.split("INDICATION:", 1)[1].split("\n \n", 1)[0].strip(),
            study_order=study.order,
            study_datetime=_datetime(study),
            boxes=boxes[im.dicom_id],
            height=height,
            width=width,
            sentences=list(study.sentences),
            phrases=report.phrases,
        )
        fault = plan.image_faults.get(im.dicom_id)
        objects = {o["bbox_name"]: o for o in graph["objects"]}
        if fault == "negative_box_coordinate":
            obj = objects[NEGATIVE_BOX_REGION]
            shift = int(np.random.default_rng([seed, 6]).integers(8, 20))
            obj["original_y1"] = -shift
            obj["original_height"] = obj["original_y2"] + shift
            obj["y1"] = obj["y1"] - max(1, int(round(shift * 224 / max(height, width))))
            obj["height"] = obj["y2"] - obj["y1"]
        elif fault == "zero_area_box":
            obj = objects[ZERO_AREA_REGION]
            obj["original_x2"] = obj["original_x1"]
            obj["original_width"] = 0
            obj["x2"] = obj["x1"]
            obj["width"] = 0
        (sg_dir / f"{im.dicom_id}_SceneGraph.json").write_text(json.dumps(graph, sort_keys=True))

    # The unnamed first column: each row's position in one shuffled list of all frontal images.
    perm = np.random.default_rng([seed, 7]).permutation(len(frontal))
    position = {frontal[i].dicom_id: int(k) for k, i in enumerate(perm)}
    columns = ["subject_id", "study_id", "dicom_id", "path", "ViewPosition"]

    def rows(ims: list[ImageRecord]) -> pd.DataFrame:
        ims = sorted(ims, key=lambda im: position[im.dicom_id])
        df = pd.DataFrame(
            {
                "subject_id": [im.study.subject_id for im in ims],
                "study_id": [im.study.study_id for im in ims],
                "dicom_id": [im.dicom_id for im in ims],
                "path": [im.rel_path(".dcm") for im in ims],
                "ViewPosition": [im.view for im in ims],
            },
            index=[position[im.dicom_id] for im in ims],
            columns=columns,
        )
        return df

    counts = {}
    for split in IMAGENOME_SPLITS:
        ims = [im for im in frontal if split_of[im.study.subject_id] == split]
        rows(ims).to_csv(split_dir / f"{split}.csv")
        counts[split] = len(ims)
    gold = [im for im in frontal if plan.image_faults.get(im.dicom_id) == "gold_set_image"]
    rows(gold).to_csv(split_dir / "images_to_avoid.csv", index=False)
    return {"split_rows": counts, "scene_graphs": len(frontal), "images_to_avoid": len(gold)}


MARKER = ".crrg_clip_synthetic"  # written into each root; only such roots are ever emptied


def _reset(root: Path) -> None:
    """Empty a root this writer made before (never a folder without its marker file)."""
    if root.exists() and any(root.iterdir()):
        if not (root / MARKER).is_file():
            raise FileExistsError(
                f"{root}: not empty and not written by the synthetic-data writer (no {MARKER}); "
                "refusing to overwrite it"
            )
        shutil.rmtree(root)
    root.mkdir(parents=True, exist_ok=True)
    (root / MARKER).write_text("written by crrg_clip.data.synthetic; safe to delete\n")


def write_synthetic_dataset(
    reports_root,
    jpg_root,
    imagenome_root,
    rsna_root,
    manifest_path,
    *,
    seed: int = 0,
    n_patients: int = 60,
    image_height: int = 384,
    image_width: int = 320,
    lateral_fraction: float = 0.3,
    rsna_images: int = 240,
    rsna_size: int = 256,
    plant_faults: bool = True,
) -> dict:
    """Write the four datasets (each root emptied first) and the manifest; return the manifest."""
    if n_patients < 10:
        raise ValueError(f"n_patients = {n_patients}: the synthetic dataset needs at least 10 patients")
    if rsna_images < 20:
        raise ValueError(f"rsna_images = {rsna_images}: the synthetic dataset needs at least 20 images")
    roots = [Path(p) for p in (reports_root, jpg_root, imagenome_root, rsna_root)]
    for root in roots:
        _reset(root)
    reports_root, jpg_root, imagenome_root, rsna_root = roots

    studies, images = sample_cohort(seed, n_patients, lateral_fraction)
    subjects = sorted({s.subject_id for s in studies})
    imagenome = patient_splits(
        subjects, np.random.default_rng([seed, 8]), IMAGENOME_SPLITS, IMAGENOME_FRACTIONS
    )
    official = patient_splits(subjects, np.random.default_rng([seed, 9]), OFFICIAL_SPLITS, OFFICIAL_FRACTIONS)
    rsna = sample_rsna(rsna_images, rsna_size, seed)
    rsna_negatives = [meta.patient_id for meta, _ in rsna if not meta.boxes]
    plan = plan_faults(seed, studies, images, imagenome, rsna_negatives, plant_faults)

    reports = _write_reports(reports_root, studies, plan, seed)
    boxes = _write_mimic_jpg(jpg_root, studies, images, official, plan, seed, image_height, image_width)
    imagenome_counts = _write_imagenome(
        imagenome_root, images, boxes, reports, imagenome, plan, image_height, image_width, seed
    )
    rsna_counts = write_rsna(rsna_root, rsna, {plan.rsna_unreadable} - {None})

    manifest = _manifest(
        seed=seed,
        params={
            "n_patients": n_patients,
            "image_height": image_height,
            "image_width": image_width,
            "lateral_fraction": lateral_fraction,
            "rsna_images": rsna_images,
            "rsna_size": rsna_size,
            "plant_faults": plant_faults,
        },
        studies=studies,
        images=images,
        reports=reports,
        imagenome=imagenome,
        official=official,
        plan=plan,
        imagenome_counts=imagenome_counts,
        rsna_counts=rsna_counts,
    )
    manifest_path = Path(manifest_path)
    manifest_path.parent.mkdir(parents=True, exist_ok=True)
    manifest_path.write_text(json.dumps(manifest, sort_keys=True, indent=2) + "\n")
    return manifest


def _manifest(
    *, seed, params, studies, images, reports, imagenome, official, plan, imagenome_counts, rsna_counts
) -> dict:
    frontal = [im for im in images if im.frontal]
    faults = plan.records(plan.rsna_unreadable)
    kind_of = plan.image_faults
    no_section = {sid for sid, r in reports.items() if r.variant in WITHOUT_FINDINGS_SECTION}
    unusable = {"gold_set_image", "missing_jpg", "truncated_jpg"}
    usable = {split: 0 for split in IMAGENOME_SPLITS}
    usable_with_findings = {split: 0 for split in IMAGENOME_SPLITS}
    for im in frontal:
        if kind_of.get(im.dicom_id) in unusable:
            continue
        split = imagenome[im.study.subject_id]
        usable[split] += 1
        if im.study.study_id not in no_section:
            usable_with_findings[split] += 1
    written = [im for im in images if kind_of.get(im.dicom_id) != "missing_jpg"]
    truncated = [im for im in images if kind_of.get(im.dicom_id) == "truncated_jpg"]
    finding_counts = {kind: 0 for kind in KINDS}
    for s in studies:
        for f in s.findings:
            finding_counts[f.kind] += 1
    counts = {
        "n_patients": len({s.subject_id for s in studies}),
        "n_studies": len(studies),
        "n_reports": len(reports),
        "n_images": len(images),
        "n_frontal": len(frontal),
        "n_lateral": len(images) - len(frontal),
        "n_jpg_files": len(written),
        "official_split_images": {
            split: sum(official[im.study.subject_id] == split for im in images) for split in OFFICIAL_SPLITS
        },
        "imagenome_split_rows": imagenome_counts["split_rows"],
        "imagenome_scene_graphs": imagenome_counts["scene_graphs"],
        "imagenome_images_to_avoid": imagenome_counts["images_to_avoid"],
        "imagenome_split_patients": {
            split: sum(v == split for v in imagenome.values()) for split in IMAGENOME_SPLITS
        },
        "studies_by_findings_count": {str(k): sum(len(s.findings) == k for s in studies) for k in range(4)},
        "findings": finding_counts,
        **rsna_counts,
    }
    expected = {
        "reports_with_findings_section": len(reports) - len(no_section),
        "mimic_jpg_readable": len(written) - len(truncated),
        "imagenome_usable": usable,
        "imagenome_usable_with_findings_section": usable_with_findings,
        "rsna_readable": rsna_counts["rsna_images"] - rsna_counts["rsna_unreadable"],
        "rsna_readable_positive": rsna_counts["rsna_positive"],  # the unreadable DICOM is a negative
    }
    report_index = {
        str(sid): {
            "subject_id": next(s.subject_id for s in studies if s.study_id == sid),
            "variant": r.variant,
            "findings_header": r.findings_header,
            "findings": r.findings,
            "has_findings_section": sid not in no_section,
        }
        for sid, r in reports.items()
    }
    return {
        "format_version": FORMAT_VERSION,
        "generator": "crrg_clip.data.synthetic",
        "seed": seed,
        "parameters": params,
        "sizes": {
            "mimic_image_height": params["image_height"],
            "mimic_image_width": params["image_width"],
            "rsna_size": params["rsna_size"],
        },
        "counts": counts,
        "expected": expected,
        "faults": faults,
        "fault_details": {
            "negative_box_coordinate": f"region '{NEGATIVE_BOX_REGION}': original_y1 < 0 (clip to 0, keep the image)",
            "zero_area_box": f"region '{ZERO_AREA_REGION}': original_x2 == original_x1 (drop the box)",
            "missing_jpg": "listed in the JPG CSVs, an ImaGenome split and a scene graph; no .jpg file",
            "truncated_jpg": "the JPEG cut to half its bytes: opens, but decoding fails",
            "gold_set_image": "listed in an ImaGenome split and in splits/images_to_avoid.csv",
            "report_without_findings": "no findings-bearing header; the sentences stand under IMPRESSION",
            "unreadable_dicom": "garbage bytes, no DICOM preamble",
        },
        "report_variants": {
            v: sorted(str(sid) for sid, r in reports.items() if r.variant == v)
            for v in sorted({r.variant for r in reports.values()} - {STANDARD})
        },
        "reports": report_index,
        "translation_lexicon": dict(sorted(TRANSLATION_LEXICON.items())),
    }
