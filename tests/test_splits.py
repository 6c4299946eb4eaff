"""Patient-level subsamples and the RSNA split."""

import numpy as np
import pandas as pd
import pytest

from crrg_clip.data.splits import (
    PatientOverlapError, check_patient_disjoint, rsna_image_labels, split_rsna, subsample, target_count,
)


def images_table(n_patients=60, seed=1):
    rng = np.random.default_rng(seed)
    rows = []
    for p in range(n_patients):
        split = ["train"] * 7 + ["valid"] + ["test"] * 2
        split = split[p % 10]
        for k in range(int(rng.integers(1, 5))):
            rows.append((f"d{p:03d}-{k}", 10000000 + p, 50000000 + p * 10 + k // 2, split))
    return pd.DataFrame(rows, columns=["dicom_id", "subject_id", "study_id", "split"])


def test_patient_level_and_sizes():
    images = images_table()
    sizes = {"train": 0.5, "valid": 3, "test": 1.0}
    out = subsample(images, sizes, seed=0)
    check_patient_disjoint(out)
    n = images["split"].value_counts()
    got = out["split"].value_counts()
    assert got["test"] == n["test"]
    assert got["train"] >= round(0.5 * n["train"]) and got["train"] < round(0.5 * n["train"]) + 4
    assert 3 <= got["valid"] < 3 + 4
    # whole patients: each chosen patient brings all its images of that split
    chosen = images[images["subject_id"].isin(out["subject_id"])]
    assert len(chosen) == len(out)


def test_seeded_determinism():
    images = images_table()
    a = subsample(images, {"train": 0.3, "valid": 0.5, "test": 0.5}, seed=3)
    b = subsample(images.sample(frac=1, random_state=9), {"train": 0.3, "valid": 0.5, "test": 0.5}, seed=3)
    c = subsample(images, {"train": 0.3, "valid": 0.5, "test": 0.5}, seed=4)
    assert a.equals(b)
    assert not a.equals(c)


def test_fraction_vs_count():
    assert target_count(0.5, 11) == 6
    assert target_count(1.0, 11) == 11
    assert target_count(0.01, 50) == 1
    assert target_count(5, 11) == 5
    with pytest.raises(ValueError, match="only 11 available"):
        target_count(12, 11)
    with pytest.raises(TypeError):
        target_count("half", 10)


def test_overlap_raises():
    frame = pd.DataFrame({"dicom_id": ["a", "b"], "subject_id": [1, 1], "study_id": [5, 6], "split": ["train", "test"]})
    with pytest.raises(PatientOverlapError, match="1 patient"):
        check_patient_disjoint(frame)


def test_rsna_labels_via_max_and_split_sizes():
    rows = []
    for i in range(200):
        pid = f"pid-{i:04d}"
        if i % 4 == 0:  # positive with two boxes
            rows += [(pid, 10, 10, 5, 5, 1), (pid, 40, 40, 5, 5, 1)]
        else:
            rows.append((pid, np.nan, np.nan, np.nan, np.nan, 0))
    boxes = pd.DataFrame(rows, columns=["patientId", "x", "y", "width", "height", "Target"])
    labels = rsna_image_labels(boxes)
    assert len(labels) == 200 and labels["label"].sum() == 50
    kept, capped = split_rsna(labels, test_size=0.3, seed=0, train_subset=0.01)
    sizes = kept["split"].value_counts()
    assert (sizes["train"], sizes["valid"], sizes["test"]) == (140, 30, 30)
    assert kept["patientId"].is_unique and len(capped) == 0
    assert kept["in_train_subset"].sum() == 1  # 1% of 140 rounds to 1: never zero
    assert kept.loc[kept["in_train_subset"], "split"].eq("train").all()
    kept2, capped2 = split_rsna(labels, test_size=0.3, seed=0, max_rows={"train": 100, "valid": None, "test": 20},
                                train_subset=10)
    assert kept2["split"].value_counts().to_dict() == {"train": 100, "valid": 30, "test": 20}
    assert len(capped2) == 50 and kept2["in_train_subset"].sum() == 10
    # the cap keeps the first rows of the same split
    assert kept2[kept2["split"] == "test"]["patientId"].tolist() == kept[kept["split"] == "test"]["patientId"].tolist()[:20]


def test_rsna_split_is_the_gloria_split():
    """train_test_split(test_size=0.3, random_state=seed), then the held-out 30% halved with
    the *first* half as test and the second as valid (GLoRIA's preprocess, PROTOCOL.md)."""
    from sklearn.model_selection import train_test_split

    labels = pd.DataFrame({"patientId": [f"pid-{i:04d}" for i in range(300)], "label": [i % 4 == 0 for i in range(300)]})
    labels["label"] = labels["label"].astype("int64")
    for seed in (0, 7):
        kept, _ = split_rsna(labels, test_size=0.3, seed=seed)
        train, rest = train_test_split(labels["patientId"].to_numpy(), test_size=0.3, random_state=seed)
        test, valid = train_test_split(rest, test_size=0.5, random_state=seed)
        for split, ids in (("train", train), ("valid", valid), ("test", test)):
            assert kept.loc[kept["split"] == split, "patientId"].tolist() == list(ids), split
