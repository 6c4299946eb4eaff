"""The synthetic dataset: real layouts (docs/FORMATS.md), planted faults, determinism, signal."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pydicom
import pytest
from PIL import Image

from crrg_clip.data.synthetic import write_synthetic_dataset
from crrg_clip.data.synthetic.anatomy import sample_anatomy
from crrg_clip.data.synthetic.findings import CHEXPERT_LABELS, Finding, study_sentences
from crrg_clip.data.synthetic.images import render_frontal
from crrg_clip.data.synthetic.lexicon import TRANSLATION_LEXICON, words
from crrg_clip.data.synthetic.reports import wrap
from crrg_clip.regions import REGIONS

PARAMS = dict(
    seed=3,
    n_patients=16,
    image_height=160,
    image_width=128,
    lateral_fraction=0.3,
    rsna_images=24,
    rsna_size=96,
    plant_faults=True,
)
DICOM_ID = re.compile(r"^[0-9a-f]{8}(-[0-9a-f]{8}){4}$")
TOP_LEVEL_KEYS = {
    "image_id",
    "viewpoint",
    "patient_id",
    "study_id",
    "gender",
    "age_decile",
    "reason_for_exam",
    "StudyOrder",
    "StudyDateTime",
    "objects",
    "attributes",
    "relationships",
}
METADATA_COLUMNS = [
    "dicom_id",
    "subject_id",
    "study_id",
    "PerformedProcedureStepDescription",
    "ViewPosition",
    "Rows",
    "Columns",
    "StudyDate",
    "StudyTime",
    "ProcedureCodeSequence_CodeMeaning",
    "ViewCodeSequence_CodeMeaning",
    "PatientOrientationCodeSequence_CodeMeaning",
]


def _write(base: Path, **overrides) -> tuple[dict, dict[str, Path]]:
    roots = {
        "reports": base / "mimic-cxr-reports",
        "jpg": base / "mimic-cxr-jpg",
        "imagenome": base / "chest-imagenome",
        "rsna": base / "rsna",
    }
    manifest = write_synthetic_dataset(
        roots["reports"],
        roots["jpg"],
        roots["imagenome"],
        roots["rsna"],
        base / "manifest.json",
        **{**PARAMS, **overrides},
    )
    return manifest, roots


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    base = tmp_path_factory.mktemp("synthetic")
    manifest, roots = _write(base)
    return base, manifest, roots


def _faults(manifest: dict, kind: str) -> list[str]:
    return [f["item_id"] for f in manifest["faults"] if f["kind"] == kind]


def _imagenome_rows(roots) -> pd.DataFrame:
    splits = roots["imagenome"] / "silver_dataset" / "splits"
    return pd.concat(
        [pd.read_csv(splits / f"{s}.csv", index_col=0).assign(split=s) for s in ("train", "valid", "test")]
    )


def _report_path(roots, subject_id: int, study_id: int) -> Path:
    sid = str(subject_id)
    return roots["reports"] / "files" / f"p{sid[:2]}" / f"p{sid}" / f"s{study_id}.txt"


# --------------------------------------------------------------------------- layouts


def test_mimic_jpg_csvs_and_tree(data):
    _, manifest, roots = data
    meta = pd.read_csv(roots["jpg"] / "mimic-cxr-2.0.0-metadata.csv.gz")
    split = pd.read_csv(roots["jpg"] / "mimic-cxr-2.0.0-split.csv.gz")
    chexpert = pd.read_csv(roots["jpg"] / "mimic-cxr-2.0.0-chexpert.csv.gz")
    assert list(meta.columns) == METADATA_COLUMNS
    assert list(split.columns) == ["dicom_id", "study_id", "subject_id", "split"]
    assert list(chexpert.columns) == ["subject_id", "study_id", *CHEXPERT_LABELS]
    assert set(split["split"]) == {"train", "validate", "test"}
    assert set(meta["ViewPosition"]) == {"PA", "AP", "LATERAL"}
    assert (meta["Rows"] == PARAMS["image_height"]).all() and (meta["Columns"] == PARAMS["image_width"]).all()
    assert meta["dicom_id"].map(lambda d: bool(DICOM_ID.match(d))).all()
    assert meta["subject_id"].astype(str).str.match(r"^1\d{7}$").all()
    assert meta["study_id"].astype(str).str.match(r"^5\d{7}$").all()
    assert chexpert["study_id"].is_unique and len(chexpert) == manifest["counts"]["n_studies"]
    values = set(chexpert[list(CHEXPERT_LABELS)].stack().dropna().unique())
    assert values <= {1.0, 0.0, -1.0} and chexpert[list(CHEXPERT_LABELS)].isna().any().any()
    # Some studies have a lateral beside the frontal image.
    per_study = meta.groupby("study_id")["ViewPosition"].apply(set)
    assert any(v >= {"LATERAL"} and len(v) == 2 for v in per_study)

    missing = set(_faults(manifest, "missing_jpg"))
    for row in meta.itertuples():
        sid = str(row.subject_id)
        path = roots["jpg"] / "files" / f"p{sid[:2]}" / f"p{sid}" / f"s{row.study_id}" / f"{row.dicom_id}.jpg"
        assert path.exists() == (row.dicom_id not in missing), path
    jpgs = list((roots["jpg"] / "files").rglob("*.jpg"))
    assert len(jpgs) == manifest["counts"]["n_jpg_files"] == len(meta) - len(missing)
    good = next(p for p in jpgs if p.stem not in set(_faults(manifest, "truncated_jpg")))
    with Image.open(good) as im:
        assert im.mode == "L" and im.size == (PARAMS["image_width"], PARAMS["image_height"])


def test_report_files_and_text(data):
    _, manifest, roots = data
    meta = pd.read_csv(roots["jpg"] / "mimic-cxr-2.0.0-metadata.csv.gz")
    files = sorted((roots["reports"] / "files").rglob("*.txt"))
    assert len(files) == meta["study_id"].nunique() == manifest["counts"]["n_reports"]
    for path in files:
        # files/p1x/p1xxxxxxx/s5xxxxxxx.txt: beside the study folders, in the patient folder
        rel = path.relative_to(roots["reports"]).parts
        assert (
            re.fullmatch(r"p1\d", rel[1])
            and rel[2].startswith(rel[1])
            and re.fullmatch(r"s5\d{7}\.txt", rel[3])
        )
        text = path.read_text()
        assert text.endswith("\n")
        lines = text.split("\n")[:-1]
        assert all(line.startswith(" ") and len(line) <= 79 for line in lines), path
        assert " " * 20 + "FINAL REPORT" in text and "\n \n" in text and "___" in text
        assert "INDICATION:" in text and "EXAMINATION:" in text and "IMPRESSION:" in text


def test_report_variants_planted(data):
    _, manifest, roots = data
    texts = {p.stem[1:]: p.read_text() for p in (roots["reports"] / "files").rglob("*.txt")}
    variants = manifest["report_variants"]
    expected_headers = {
        "findings_and_impression": "\n FINDINGS AND IMPRESSION:",
        "view_header_pa_and_lateral": "\n PA AND LATERAL:",
        "view_header_portable": "\n PORTABLE:",
        "typo_finidngs": "\n FINIDNGS:",
    }
    for variant, header in expected_headers.items():
        assert variants[variant], variant
        assert all(header in texts[s] for s in variants[variant])
    assert all(re.search(r"\n FINDINGS:  \S", texts[s]) for s in variants["text_on_header_line"])
    for s in variants["addendum_on_top"]:
        head, rest = texts[s].split("FINAL REPORT", 1)
        assert "ADDENDUM:" in head and "_" * 60 in head
    standard = [s for s, r in manifest["reports"].items() if r["variant"] == "standard"]
    assert len(standard) > len(texts) / 2 and all("\n FINDINGS: \n \n" in texts[s] for s in standard)


def test_scene_graphs(data):
    _, manifest, roots = data
    rows = _imagenome_rows(roots)
    sg_dir = roots["imagenome"] / "silver_dataset" / "scene_graph"
    files = sorted(sg_dir.glob("*_SceneGraph.json"))
    assert len(files) == manifest["counts"]["imagenome_scene_graphs"] == len(rows)
    assert {f.name[: -len("_SceneGraph.json")] for f in files} == set(rows["dicom_id"])
    n_multi_region_sentences = n_newline = n_digit = 0
    for path in files:
        graph = json.loads(path.read_text())
        assert set(graph) == TOP_LEVEL_KEYS and graph["relationships"] == []
        assert graph["viewpoint"] in ("PA", "AP")
        assert [o["bbox_name"] for o in graph["objects"]] == list(REGIONS)
        for o in graph["objects"]:
            assert o["object_id"] == f"{graph['image_id']}_{o['bbox_name']}" and "updated" in o
            assert o["original_width"] == o["original_x2"] - o["original_x1"]
            assert o["width"] == o["x2"] - o["x1"]
        report = _report_path(roots, graph["patient_id"], graph["study_id"]).read_text()
        phrase_regions: dict[str, int] = {}
        for entry in graph["attributes"]:
            assert entry[entry["bbox_name"]] is True
            n = len(entry["phrases"])
            assert n == len(entry["attributes"]) == len(entry["phrase_IDs"]) == len(entry["sections"]) >= 1
            assert all(s == "finalreport" for s in entry["sections"])
            assert all(pid.startswith(f"{graph['study_id']}|") for pid in entry["phrase_IDs"])
            for phrase, attrs in zip(entry["phrases"], entry["attributes"]):
                assert phrase in report  # raw sentence, line breaks and all
                assert ("nlp|yes|normal" in attrs) != ("nlp|yes|abnormal" in attrs)
                phrase_regions[phrase] = phrase_regions.get(phrase, 0) + 1
                n_newline += "\n" in phrase
                n_digit += bool(re.search(r"\d", phrase))
        n_multi_region_sentences += sum(v > 1 for v in phrase_regions.values())
    assert n_multi_region_sentences and n_newline and n_digit


def test_imagenome_split_csvs(data):
    _, manifest, roots = data
    splits = roots["imagenome"] / "silver_dataset" / "splits"
    for s in ("train", "valid", "test"):
        header = (splits / f"{s}.csv").read_text().split("\n", 1)[0]
        assert header == ",subject_id,study_id,dicom_id,path,ViewPosition"
    avoid_header = (splits / "images_to_avoid.csv").read_text().split("\n", 1)[0]
    assert avoid_header == "subject_id,study_id,dicom_id,path,ViewPosition"
    rows = _imagenome_rows(roots)
    assert rows.index.is_unique
    assert set(rows["ViewPosition"]) <= {"PA", "AP"}
    assert rows.groupby("subject_id")["split"].nunique().max() == 1  # patient-level
    assert rows.groupby("split").size().to_dict() == manifest["counts"]["imagenome_split_rows"]
    for row in rows.itertuples():
        sid = str(row.subject_id)
        assert row.path == f"files/p{sid[:2]}/p{sid}/s{row.study_id}/{row.dicom_id}.dcm"
    # Not the official split: at least one image sits in differently named/assigned splits.
    official = pd.read_csv(roots["jpg"] / "mimic-cxr-2.0.0-split.csv.gz").set_index("dicom_id")["split"]
    mapped = rows.set_index("dicom_id")["split"].replace({"valid": "validate"})
    assert (official.loc[mapped.index] != mapped).any()


def test_rsna_layout_and_dicom(data):
    _, manifest, roots = data
    labels = pd.read_csv(roots["rsna"] / "stage_2_train_labels.csv")
    classes = pd.read_csv(roots["rsna"] / "stage_2_detailed_class_info.csv")
    assert list(labels.columns) == ["patientId", "x", "y", "width", "height", "Target"]
    assert list(classes.columns) == ["patientId", "class"]
    assert len(labels) == len(classes) == manifest["counts"]["rsna_label_rows"]
    assert set(classes["class"]) <= {"Lung Opacity", "No Lung Opacity / Not Normal", "Normal"}
    negatives = labels[labels["Target"] == 0]
    assert negatives[["x", "y", "width", "height"]].isna().all().all() and negatives["patientId"].is_unique
    per_image = labels.groupby("patientId")["Target"].max()
    assert len(per_image) == PARAMS["rsna_images"] and per_image.sum() == manifest["counts"]["rsna_positive"]
    assert (labels.groupby("patientId").size() == 2).any()  # some positives have two boxes
    bad = set(_faults(manifest, "unreadable_dicom"))
    good = next(p for p in per_image.index if p not in bad)
    ds = pydicom.dcmread(roots["rsna"] / "stage_2_train_images" / f"{good}.dcm")
    assert ds.file_meta.TransferSyntaxUID == "1.2.840.10008.1.2.4.50"
    assert ds.PhotometricInterpretation == "MONOCHROME2" and ds.SamplesPerPixel == 1
    assert ds.BitsAllocated == 8 and ds.BitsStored == 8 and ds.PatientID == good
    pixels = ds.pixel_array
    assert pixels.shape == (PARAMS["rsna_size"], PARAMS["rsna_size"]) and pixels.dtype == np.uint8
    assert pixels.std() > 10


# --------------------------------------------------------------------------- faults


def test_every_fault_planted_once_per_image(data):
    _, manifest, roots = data
    kinds = {f["kind"] for f in manifest["faults"]}
    assert kinds == {
        "report_without_findings",
        "truncated_jpg",
        "missing_jpg",
        "negative_box_coordinate",
        "zero_area_box",
        "gold_set_image",
        "unreadable_dicom",
    }
    assert all(set(f) == {"dataset", "item_id", "kind"} for f in manifest["faults"])
    meta = pd.read_csv(roots["jpg"] / "mimic-cxr-2.0.0-metadata.csv.gz").set_index("dicom_id")
    faulty_studies = [int(s) for s in _faults(manifest, "report_without_findings")]
    image_faults = [
        f["item_id"] for f in manifest["faults"] if f["dataset"] in ("mimic-cxr-jpg", "chest-imagenome")
    ]
    faulty_studies += meta.loc[image_faults, "study_id"].tolist()
    assert len(faulty_studies) == len(set(faulty_studies))  # one fault per study, hence per image


def test_faults_are_what_they_claim(data):
    _, manifest, roots = data
    meta = pd.read_csv(roots["jpg"] / "mimic-cxr-2.0.0-metadata.csv.gz").set_index("dicom_id")
    rows = _imagenome_rows(roots).set_index("dicom_id")
    sg_dir = roots["imagenome"] / "silver_dataset" / "scene_graph"

    (study,) = _faults(manifest, "report_without_findings")
    subject = meta.loc[meta["study_id"] == int(study), "subject_id"].iloc[0]
    text = _report_path(roots, subject, int(study)).read_text()
    assert not re.search(r"\n (FINDINGS|FINIDNGS|PA AND LATERAL|PORTABLE)", text) and "IMPRESSION:" in text

    (dicom,) = _faults(manifest, "truncated_jpg")
    sid = str(meta.loc[dicom, "subject_id"])
    path = (
        roots["jpg"]
        / "files"
        / f"p{sid[:2]}"
        / f"p{sid}"
        / f"s{meta.loc[dicom, 'study_id']}"
        / f"{dicom}.jpg"
    )
    with pytest.raises(OSError):
        with Image.open(path) as im:
            im.load()

    (dicom,) = _faults(manifest, "missing_jpg")
    assert dicom in rows.index and dicom in meta.index
    assert not list((roots["jpg"] / "files").rglob(f"{dicom}.jpg"))

    (dicom,) = _faults(manifest, "negative_box_coordinate")
    graph = json.loads((sg_dir / f"{dicom}_SceneGraph.json").read_text())
    assert any(min(o["original_x1"], o["original_y1"]) < 0 for o in graph["objects"])
    (dicom,) = _faults(manifest, "zero_area_box")
    graph = json.loads((sg_dir / f"{dicom}_SceneGraph.json").read_text())
    assert any(o["original_width"] == 0 or o["original_height"] == 0 for o in graph["objects"])
    # No other scene graph has such boxes.
    planted = set(_faults(manifest, "negative_box_coordinate") + _faults(manifest, "zero_area_box"))
    for path in sg_dir.glob("*.json"):
        if path.name.split("_")[0] not in planted:
            for o in json.loads(path.read_text())["objects"]:
                assert 0 <= o["original_x1"] < o["original_x2"] <= PARAMS["image_width"]
                assert 0 <= o["original_y1"] < o["original_y2"] <= PARAMS["image_height"]

    (dicom,) = _faults(manifest, "gold_set_image")
    avoid = pd.read_csv(roots["imagenome"] / "silver_dataset" / "splits" / "images_to_avoid.csv")
    assert list(avoid["dicom_id"]) == [dicom] and dicom in rows.index

    (patient,) = _faults(manifest, "unreadable_dicom")
    with pytest.raises(pydicom.errors.InvalidDicomError):
        pydicom.dcmread(roots["rsna"] / "stage_2_train_images" / f"{patient}.dcm")


def test_no_faults_when_switched_off(tmp_path):
    manifest, roots = _write(tmp_path, plant_faults=False, n_patients=10, rsna_images=20)
    assert manifest["faults"] == []
    assert manifest["counts"]["n_jpg_files"] == manifest["counts"]["n_images"]
    avoid = pd.read_csv(roots["imagenome"] / "silver_dataset" / "splits" / "images_to_avoid.csv")
    assert avoid.empty and list(avoid.columns) == [
        "subject_id",
        "study_id",
        "dicom_id",
        "path",
        "ViewPosition",
    ]


# --------------------------------------------------------------------------- manifest, determinism


def test_manifest_counts_match_files(data):
    base, manifest, roots = data
    assert json.loads((base / "manifest.json").read_text()) == manifest
    c = manifest["counts"]
    meta = pd.read_csv(roots["jpg"] / "mimic-cxr-2.0.0-metadata.csv.gz")
    assert c["n_patients"] == PARAMS["n_patients"] == meta["subject_id"].nunique()
    assert c["n_images"] == len(meta) == c["n_frontal"] + c["n_lateral"]
    assert c["n_lateral"] == (meta["ViewPosition"] == "LATERAL").sum()
    assert sum(c["official_split_images"].values()) == c["n_images"]
    e = manifest["expected"]
    assert e["mimic_jpg_readable"] == c["n_jpg_files"] - 1
    assert sum(e["imagenome_usable"].values()) == c["n_frontal"] - 3  # gold, missing, truncated
    assert e["rsna_readable"] == PARAMS["rsna_images"] - 1
    assert e["reports_with_findings_section"] == c["n_reports"] - 1 - len(
        manifest["report_variants"]["findings_and_impression"]
    )
    assert manifest["sizes"] == {"mimic_image_height": 160, "mimic_image_width": 128, "rsna_size": 96}
    # Most studies have 1-3 findings.
    by_n = c["studies_by_findings_count"]
    assert by_n["0"] < c["n_studies"] / 2


def test_determinism_byte_identical(tmp_path, data):
    base, _, roots = data
    other = tmp_path / "again"
    _write(other)
    first = {p.relative_to(base): p.read_bytes() for p in base.rglob("*") if p.is_file()}
    second = {p.relative_to(other): p.read_bytes() for p in other.rglob("*") if p.is_file()}
    assert first.keys() == second.keys()
    assert [k for k in first if first[k] != second[k]] == []
    gz = roots["jpg"] / "mimic-cxr-2.0.0-split.csv.gz"
    assert gz.read_bytes()[4:8] == b"\0\0\0\0"  # gzip mtime = 0


def test_refuses_to_empty_a_foreign_folder(tmp_path):
    foreign = tmp_path / "mimic-cxr-reports"
    foreign.mkdir()
    (foreign / "precious.txt").write_text("not ours")
    with pytest.raises(FileExistsError, match="refusing"):
        _write(tmp_path)
    assert (foreign / "precious.txt").exists()


# --------------------------------------------------------------------------- signal


def _box_mean(img: np.ndarray, box) -> float:
    x1, y1, x2, y2 = box
    return float(img[y1:y2, x1:x2].mean())


@pytest.mark.parametrize(
    "finding, region, brighter",
    [
        (Finding("opacity", "right", "lower"), "right lower lung zone", True),
        (Finding("consolidation", "left", "mid"), "left mid lung zone", True),
        (Finding("atelectasis", "left", "lower"), "left lower lung zone", True),
        (Finding("nodule", "right", "upper", size_mm=15), "right upper lung zone", True),
        (Finding("effusion", "right", severity="small"), "right costophrenic angle", True),
        (Finding("pneumothorax", "left", severity="small"), "left apical zone", False),
    ],
)
def test_finding_changes_its_region(finding, region, brighter):
    anatomy = sample_anatomy(np.random.default_rng(0), 384, 320)
    normal = render_frontal(anatomy, [], np.random.default_rng(1))
    abnormal = render_frontal(anatomy, [finding], np.random.default_rng(1))
    x1, y1, x2, y2 = anatomy.box(region)
    if finding.kind == "nodule":  # small: look at the zone's centre, where it is drawn (offset 0)
        cx, cy = (x1 + x2) // 2, (y1 + y2) // 2
        x1, y1, x2, y2 = cx - 5, cy - 5, cx + 5, cy + 5
    delta = _box_mean(abnormal, (x1, y1, x2, y2)) - _box_mean(normal, (x1, y1, x2, y2))
    assert (delta > 5) if brighter else (delta < -5), delta
    # The evidence stays local: a far region does not change.
    far = anatomy.box("left lower lung zone" if finding.side == "right" else "right lower lung zone")
    assert abs(_box_mean(abnormal, far) - _box_mean(normal, far)) < 1.0


def test_cardiomegaly_widens_the_cardiac_silhouette_box():
    widths = {
        heart: np.mean(
            [
                (lambda b: b[2] - b[0])(
                    sample_anatomy(np.random.default_rng(i), 384, 320, heart=heart).box("cardiac silhouette")
                )
                for i in range(20)
            ]
        )
        for heart in ("normal", "mild", "moderate")
    }
    assert widths["normal"] * 1.15 < widths["mild"] < widths["moderate"]


def test_signal_in_written_rsna_images(data):
    _, manifest, roots = data
    labels = pd.read_csv(roots["rsna"] / "stage_2_train_labels.csv")
    bad = set(_faults(manifest, "unreadable_dicom"))
    images = {
        p: pydicom.dcmread(roots["rsna"] / "stage_2_train_images" / f"{p}.dcm").pixel_array.astype(float)
        for p in labels["patientId"].unique()
        if p not in bad
    }
    negatives = [images[p] for p in labels.loc[labels["Target"] == 0, "patientId"] if p in images]
    diffs = []
    for row in labels[labels["Target"] == 1].itertuples():
        x1, y1 = int(row.x), int(row.y)
        x2, y2 = x1 + int(row.width), y1 + int(row.height)
        inside = images[row.patientId][y1:y2, x1:x2].mean()
        baseline = np.mean([n[y1:y2, x1:x2].mean() for n in negatives])
        diffs.append(inside - baseline)
    assert np.mean(diffs) > 10 and np.mean(np.array(diffs) > 0) > 0.8


def test_signal_in_written_mimic_images(data):
    """Zones whose sentence reports an opacity are brighter than the same zones reported clear."""
    _, manifest, roots = data
    bad = {f["item_id"] for f in manifest["faults"]}
    sg_dir = roots["imagenome"] / "silver_dataset" / "scene_graph"
    opaque, clear = [], []
    for path in sorted(sg_dir.glob("*.json")):
        graph = json.loads(path.read_text())
        if graph["image_id"] in bad:
            continue
        jpg = next((roots["jpg"] / "files").rglob(f"{graph['image_id']}.jpg"))
        img = np.asarray(Image.open(jpg), dtype=float)
        boxes = {o["bbox_name"]: o for o in graph["objects"]}
        abnormal = {
            e["bbox_name"]
            for e in graph["attributes"]
            if any("anatomicalfinding|yes|lung opacity" in a for a in e["attributes"])
        }
        for region in (
            "right mid lung zone",
            "left mid lung zone",
            "right upper lung zone",
            "left upper lung zone",
        ):
            o = boxes[region]
            mean = img[o["original_y1"] : o["original_y2"], o["original_x1"] : o["original_x2"]].mean()
            (opaque if region in abnormal else clear).append(mean)
    assert opaque and clear
    assert np.mean(opaque) > np.mean(clear) + 5


# --------------------------------------------------------------------------- text pieces


def test_wrap_keeps_phrases_recoverable():
    paragraph = "A 12 mm nodule is seen in the right upper lung. " * 6
    block, mapping = wrap(paragraph.strip(), prefix="FINDINGS:  ")
    assert all(line.startswith(" ") and len(line) <= 79 for line in block.split("\n"))
    assert block.startswith(" FINDINGS:  A 12 mm")
    assert re.sub(r"\s+", " ", block.replace(" FINDINGS:  ", "", 1)).strip() == paragraph.strip()


def test_lexicon_covers_every_findings_word(data):
    _, manifest, _ = data
    assert manifest["translation_lexicon"] == TRANSLATION_LEXICON
    findings = [r["findings"] for r in manifest["reports"].values()]
    sentence_sets = [study_sentences([]), study_sentences([Finding("cardiomegaly", severity="mild")])]
    findings += [s.text for ss in sentence_sets for s in ss]
    missing = {w for text in findings for w in words(text)} - set(TRANSLATION_LEXICON)
    assert not missing
