"""Write the synthetic dataset at a small size, ingest it, and check the manifest's counts.

Every planted fault must show up: excluded with its reason, or (negative box coordinates)
repaired by clipping.
"""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from crrg_clip.data.cache import cache_mimic, cache_rsna
from crrg_clip.data.exclusions import ExclusionLog, check_threshold, summarise
from crrg_clip.data.mimic import ingest_mimic_images, join_imagenome
from crrg_clip.data.reports import ingest_reports
from crrg_clip.data.rsna import ingest_rsna
from crrg_clip.data.scene_graphs import list_scene_graph_files, parse_scene_graph_files, read_image_sizes, shard
from crrg_clip.data.splits import check_patient_disjoint, subsample

synthetic = pytest.importorskip("crrg_clip.data.synthetic")

# manifest fault kind -> (exclusion dataset, item id suffix, reason); None: kept after repair
EXPECTED_REASON = {
    "missing_jpg": ("mimic-cxr-jpg", "", "missing_jpg"),
    "truncated_jpg": ("mimic-cxr-jpg", "", "truncated_jpg"),
    "gold_set_image": ("imagenome", "", "images_to_avoid"),
    "zero_area_box": ("imagenome-boxes", "_carina", "box_zero_area"),
    "unreadable_dicom": ("rsna", "", "unreadable_dcm"),
    "report_without_findings": None,
    "negative_box_coordinate": None,
}


@pytest.fixture(scope="module")
def ingested(tmp_path_factory):
    root = tmp_path_factory.mktemp("demo")
    roots = {k: root / k for k in ("reports", "jpg", "imagenome", "rsna")}
    manifest = synthetic.write_synthetic_dataset(
        roots["reports"], roots["jpg"], roots["imagenome"], roots["rsna"], root / "manifest.json",
        seed=0, n_patients=24, image_height=160, image_width=128, rsna_images=40, rsna_size=64,
    )
    log = ExclusionLog()
    reports, part = ingest_reports(roots["reports"])
    log.extend(part)
    images, part = ingest_mimic_images(roots["jpg"], workers=2)
    log.extend(part)
    files = list_scene_graph_files(roots["imagenome"])
    sizes = read_image_sizes(roots["jpg"] / "mimic-cxr-2.0.0-metadata.csv.gz")
    shards = [parse_scene_graph_files(shard(files, i, 2), sizes, workers=1) for i in range(2)]
    regions = pd.concat([s[0] for s in shards], ignore_index=True)
    for _, part in shards:
        log.extend(part)
    joined, part = join_imagenome(roots["imagenome"], images, reports, regions)
    log.extend(part)
    rsna, part = ingest_rsna(roots["rsna"], test_size=0.3, seed=0, train_subset=0.1, workers=2)
    log.extend(part)
    return dict(manifest=manifest, roots=roots, reports=reports, images=images, regions=regions,
                joined=joined, rsna=rsna, exclusions=log.to_frame(), files=files, tmp=root)


def test_counts_match_the_manifest(ingested):
    m, expected = ingested["manifest"], ingested["manifest"]["expected"]
    reports = ingested["reports"]
    assert len(reports) == m["counts"]["n_reports"]
    assert int(reports["has_findings"].sum()) == expected["reports_with_findings_section"]
    assert len(ingested["images"]) == expected["mimic_jpg_readable"]
    assert len(ingested["files"]) == m["counts"]["imagenome_scene_graphs"]
    assert len(ingested["regions"]) == 29 * m["counts"]["imagenome_scene_graphs"]
    got = ingested["joined"]["split"].value_counts().to_dict()
    want = {"train": expected["imagenome_usable"]["train"],
            "valid": expected["imagenome_usable_with_findings_section"]["valid"],
            "test": expected["imagenome_usable_with_findings_section"]["test"]}
    assert got == {k: v for k, v in want.items() if v}
    rsna = ingested["rsna"]
    assert len(rsna) == expected["rsna_readable"] and int(rsna["label"].sum()) == expected["rsna_readable_positive"]


def test_findings_text_matches_the_manifest(ingested):
    reports = ingested["reports"].set_index("study_id")
    for study_id, entry in ingested["manifest"]["reports"].items():
        want = entry["findings"] if entry["has_findings_section"] else ""
        assert reports.loc[int(study_id), "findings"] == want, entry["variant"]


def test_every_fault_accounted_for(ingested):
    exclusions = ingested["exclusions"]
    seen = set(exclusions.itertuples(index=False, name=None))
    regions = ingested["regions"].set_index(["dicom_id", "region"])
    joined = ingested["joined"]
    faults = ingested["manifest"]["faults"]
    assert {f["kind"] for f in faults} == set(EXPECTED_REASON)
    for fault in faults:
        expected = EXPECTED_REASON[fault["kind"]]
        if expected is not None:
            dataset, suffix, reason = expected
            assert (dataset, fault["item_id"] + suffix, reason) in seen, fault
        elif fault["kind"] == "negative_box_coordinate":
            row = regions.loc[(fault["item_id"], "spine")]
            assert bool(row["box_valid"]) and row["y1"] == 0.0
            assert fault["item_id"] in set(joined["dicom_id"])
        else:  # report_without_findings: the report is kept, its valid/test images are not
            study = int(fault["item_id"])
            report = ingested["reports"].set_index("study_id").loc[study]
            assert not report["has_findings"]
            in_eval = joined[(joined["study_id"] == study) & (joined["split"] != "train")]
            assert in_eval.empty
    # nothing else is excluded beyond the planted faults and their consequences
    planted = {f["item_id"] for f in faults}
    for dataset, item, reason in seen:
        if reason == "no_readable_jpg":
            assert item in planted
        elif reason == "no_findings_valid_test":  # its study's report has no FINDINGS section
            study = ingested["images"].set_index("dicom_id").loc[item, "study_id"]
            assert not ingested["manifest"]["reports"][str(study)]["has_findings_section"]
        else:
            assert item.split("_")[0] in planted, (dataset, item, reason)


def test_every_input_item_accounted_for(ingested):
    m, exclusions = ingested["manifest"], ingested["exclusions"]
    per = exclusions.groupby("dataset").size().to_dict()
    assert len(ingested["images"]) + per.get("mimic-cxr-jpg", 0) == m["counts"]["n_images"]
    split_rows = sum(m["counts"]["imagenome_split_rows"].values())
    assert len(ingested["joined"]) + per.get("imagenome", 0) == split_rows
    assert len(ingested["rsna"]) + per.get("rsna", 0) == m["counts"]["rsna_images"]
    summary = summarise(exclusions, {"mimic-cxr-jpg": len(ingested["images"]), "imagenome": len(ingested["joined"]),
                                     "rsna": len(ingested["rsna"]),
                                     "imagenome-boxes": int(ingested["regions"]["box_valid"].sum())})
    check_threshold(summary, 0.5)


def test_subsample_and_caches(ingested):
    joined = ingested["joined"]
    sub = subsample(joined, {"train": 0.5, "valid": 1.0, "test": 1.0}, seed=0)
    check_patient_disjoint(sub)
    out = ingested["tmp"] / "cache"
    index, regions = cache_mimic(ingested["images"], [sub], ingested["regions"], ingested["roots"]["jpg"],
                                 out / "mimic", size=64, workers=2)
    studies = set(sub["study_id"])
    assert set(index["study_id"]) == studies
    assert len(index) == int(ingested["images"]["study_id"].isin(studies).sum())  # laterals included
    cache = np.load(out / "mimic" / "images.npy", mmap_mode="r")
    assert cache.shape == (len(index), 64, 64) and cache.dtype == np.uint8
    assert list(index.columns) == ["dicom_id", "row", "study_id", "view_position", "scale", "pad_x", "pad_y",
                                   "width", "height"]
    valid = regions[regions["box_valid"]]
    assert (valid[["x1", "y1", "x2", "y2"]].to_numpy() <= 64 + 1e-9).all()
    assert (valid[["x1", "y1"]].to_numpy() >= 0).all()
    rsna_index = cache_rsna(ingested["rsna"], ingested["roots"]["rsna"], out / "rsna", size=48, workers=2)
    assert np.load(out / "rsna" / "images.npy").shape == (len(ingested["rsna"]), 48, 48)
    assert list(rsna_index.columns) == ["patientId", "row", "label", "split", "in_train_subset"]
