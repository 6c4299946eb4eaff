"""RSNA Pneumonia Detection (stage 2) in its real layout (FORMATS.md section 4).

Positive images get bright opacities drawn inside their labelled boxes; negatives are
clean ("Normal") or carry a non-opacity abnormality, an enlarged heart ("No Lung
Opacity / Not Normal"). DICOMs are 8-bit MONOCHROME2, lossy JPEG Baseline.
"""

from __future__ import annotations

import io
import uuid
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.encaps import encapsulate
from pydicom.uid import JPEGBaseline8Bit, SecondaryCaptureImageStorage, generate_uid

from .anatomy import Anatomy, Box, sample_anatomy
from .findings import Finding
from .images import render_frontal

POSITIVE_FRACTION = 0.25
TWO_BOX_FRACTION = 0.35
UID_PREFIX = "1.2.826.0.1.3680043.10.1234."  # a fixed private root for the synthetic UIDs


@dataclass(frozen=True)
class RsnaImage:
    patient_id: str
    boxes: tuple[Box, ...]
    klass: str
    view: str
    sex: str
    age: int


def _opacity_boxes(anatomy: Anatomy, n: int, rng: np.random.Generator) -> tuple[Box, ...]:
    """``n`` boxes in distinct lungs (or distinct zones), each inside its lung box."""
    sides = list(rng.permutation(["right", "left"]))
    boxes = []
    for k in range(n):
        side = sides[k % 2]
        zone = str(rng.choice(["mid", "lower", "lower", "upper"]))
        lx1, ly1, lx2, ly2 = anatomy.box(f"{side} lung")
        zx1, zy1, zx2, zy2 = anatomy.box(f"{side} {zone} lung zone")
        lw, lh = lx2 - lx1, ly2 - ly1
        bw, bh = rng.uniform(0.45, 0.75) * lw, rng.uniform(0.22, 0.36) * lh
        cx = (zx1 + zx2) / 2 + rng.uniform(-0.1, 0.1) * lw
        cy = (zy1 + zy2) / 2 + rng.uniform(-0.05, 0.05) * lh
        x1 = int(np.clip(cx - bw / 2, lx1, lx2 - bw))
        y1 = int(np.clip(cy - bh / 2, ly1, ly2 - bh))
        boxes.append((x1, y1, int(x1 + bw), int(y1 + bh)))
    return tuple(boxes)


def sample_rsna(n_images: int, size: int, seed: int) -> list[tuple[RsnaImage, np.ndarray]]:
    """The images (``uint8 (size, size)``) and their labels, in file order."""
    rng = np.random.default_rng([seed, 4])
    n_pos = max(1, int(round(POSITIVE_FRACTION * n_images)))
    positive = set(rng.choice(n_images, size=n_pos, replace=False).tolist())
    out = []
    for i in range(n_images):
        irng = np.random.default_rng([seed, 4, i])
        patient_id = str(uuid.UUID(bytes=irng.bytes(16), version=4))
        view = "PA" if irng.random() < 0.55 else "AP"
        sex = "M" if irng.random() < 0.55 else "F"
        age = int(irng.integers(18, 90))
        if i in positive:
            anatomy = sample_anatomy(irng, size, size)
            n_boxes = 2 if irng.random() < TWO_BOX_FRACTION else 1
            boxes = _opacity_boxes(anatomy, n_boxes, irng)
            img = render_frontal(anatomy, [], irng, opacity_boxes=boxes)
            klass = "Lung Opacity"
        elif irng.random() < 0.5:
            anatomy = sample_anatomy(irng, size, size)
            img, boxes, klass = render_frontal(anatomy, [], irng), (), "Normal"
        else:
            anatomy = sample_anatomy(irng, size, size, heart="moderate")
            img = render_frontal(anatomy, [Finding("cardiomegaly", severity="moderate")], irng)
            boxes, klass = (), "No Lung Opacity / Not Normal"
        out.append((RsnaImage(patient_id, boxes, klass, view, sex, age), img))
    return out


def dicom_bytes(meta: RsnaImage, pixels: np.ndarray, quality: int = 92) -> bytes:
    """A DICOM file: 8-bit MONOCHROME2, lossy JPEG Baseline (1.2.840.10008.1.2.4.50)."""
    buf = io.BytesIO()
    Image.fromarray(pixels, mode="L").save(buf, format="JPEG", quality=quality)
    sop_uid = generate_uid(prefix=UID_PREFIX, entropy_srcs=[meta.patient_id, "sop"])

    file_meta = FileMetaDataset()
    file_meta.MediaStorageSOPClassUID = SecondaryCaptureImageStorage
    file_meta.MediaStorageSOPInstanceUID = sop_uid
    file_meta.TransferSyntaxUID = JPEGBaseline8Bit
    file_meta.ImplementationClassUID = UID_PREFIX + "1"
    file_meta.ImplementationVersionName = "CRRG_CLIP_SYN"

    ds = Dataset()
    ds.file_meta = file_meta
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.SOPClassUID = SecondaryCaptureImageStorage
    ds.SOPInstanceUID = sop_uid
    ds.StudyDate = "19010101"
    ds.StudyTime = "000000.00"
    ds.AccessionNumber = ""
    ds.Modality = "CR"
    ds.ConversionType = "WSD"
    ds.ReferringPhysicianName = ""
    ds.SeriesDescription = f"view: {meta.view}"
    ds.PatientName = meta.patient_id
    ds.PatientID = meta.patient_id
    ds.PatientBirthDate = ""
    ds.PatientSex = meta.sex
    ds.PatientAge = f"{meta.age:03d}Y"
    ds.BodyPartExamined = "CHEST"
    ds.ViewPosition = meta.view
    ds.StudyInstanceUID = generate_uid(prefix=UID_PREFIX, entropy_srcs=[meta.patient_id, "study"])
    ds.SeriesInstanceUID = generate_uid(prefix=UID_PREFIX, entropy_srcs=[meta.patient_id, "series"])
    ds.StudyID = ""
    ds.SeriesNumber = 1
    ds.InstanceNumber = 1
    ds.PatientOrientation = ""
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows, ds.Columns = pixels.shape
    ds.PixelSpacing = [round(0.168 * 1024 / pixels.shape[0], 6)] * 2
    ds.BitsAllocated = 8
    ds.BitsStored = 8
    ds.HighBit = 7
    ds.PixelRepresentation = 0
    ds.LossyImageCompression = "01"
    ds.LossyImageCompressionMethod = "ISO_10918_1"
    ds.PixelData = encapsulate([buf.getvalue()])
    ds["PixelData"].VR = "OB"
    out = io.BytesIO()
    ds.save_as(out, enforce_file_format=True)
    return out.getvalue()


def write_rsna(root: Path, images: list[tuple[RsnaImage, np.ndarray]], unreadable: set[str]) -> dict:
    """Write the two CSVs and the DICOMs; ``unreadable`` patientIds get garbage bytes."""
    image_dir = root / "stage_2_train_images"
    image_dir.mkdir(parents=True, exist_ok=True)
    label_rows, class_rows = [], []
    for meta, pixels in images:
        if meta.boxes:
            for x1, y1, x2, y2 in meta.boxes:
                label_rows.append((meta.patient_id, float(x1), float(y1), float(x2 - x1), float(y2 - y1), 1))
                class_rows.append((meta.patient_id, meta.klass))
        else:
            label_rows.append((meta.patient_id, np.nan, np.nan, np.nan, np.nan, 0))
            class_rows.append((meta.patient_id, meta.klass))
        path = image_dir / f"{meta.patient_id}.dcm"
        if meta.patient_id in unreadable:
            garbage = np.random.default_rng(len(meta.patient_id) + pixels.size).bytes(2048)
            path.write_bytes(b"NOT A DICOM FILE\n" + garbage)
        else:
            path.write_bytes(dicom_bytes(meta, pixels))
    labels = pd.DataFrame(label_rows, columns=["patientId", "x", "y", "width", "height", "Target"])
    labels.to_csv(root / "stage_2_train_labels.csv", index=False)
    classes = pd.DataFrame(class_rows, columns=["patientId", "class"])
    classes.to_csv(root / "stage_2_detailed_class_info.csv", index=False)
    return {
        "rsna_images": len(images),
        "rsna_positive": sum(1 for m, _ in images if m.boxes),
        "rsna_boxes": sum(len(m.boxes) for m, _ in images),
        "rsna_label_rows": len(label_rows),
        "rsna_unreadable": len(unreadable),
    }
