import numpy as np
import pytest

from crrg_clip.evaluate.bootstrap import (
    bootstrap_indices, bootstrap_plan, mean_replicates, percentile_ci, sum_replicates, with_ci,
)


def test_indices_deterministic_per_seed():
    a, b, c = (np.stack(bootstrap_indices(50, 200, s)) for s in (7, 7, 8))
    assert a.shape == (200, 50)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    assert a.min() >= 0 and a.max() < 50


def test_ci_contains_point_estimate():
    values = np.random.default_rng(0).normal(0.3, 0.1, 120)
    reps = mean_replicates(values, bootstrap_indices(len(values), 1000, 0))
    result = with_ci(values.mean(), reps, 0.95)
    assert result["ci_low"] < result["value"] < result["ci_high"]
    # about 2 standard errors each side
    se = values.std(ddof=1) / np.sqrt(len(values))
    assert abs((result["ci_high"] - result["ci_low"]) / (2 * 1.96 * se) - 1) < 0.15


def test_percentile_ci_by_hand():
    low, high = percentile_ci(np.arange(101, dtype=float), 0.9)
    assert (low, high) == pytest.approx((5.0, 95.0))
    assert np.isnan(percentile_ci([np.nan])[0])


# ----------------------------------------------------------------------------- cluster bootstrap
def test_image_unit_draws_exactly_todays_indices():
    """`unit: image` keeps the numbers of every metrics file written before the patient unit."""
    rows = bootstrap_indices(50, 200, 7)
    legacy = np.random.default_rng(7).integers(0, 50, size=(200, 50), dtype=np.int64)
    assert len(rows) == 200
    np.testing.assert_array_equal(np.stack(rows), legacy)


def test_patient_unit_resamples_whole_patients():
    # patients of 5 ordered test images: p1 has 3 images, p2 one, p3 one
    patients = ["p1", "p2", "p1", "p3", "p1"]
    rows = bootstrap_indices(5, 300, 0, groups=patients)
    sizes = set()
    for row in rows:
        counts = np.bincount(row, minlength=5)
        # an image of p1 is drawn exactly as often as every other image of p1
        assert counts[0] == counts[2] == counts[4]
        # three patients drawn with replacement: 3 draws in all
        assert counts[0] + counts[1] + counts[3] == 3
        assert set(row.tolist()) <= {0, 1, 2, 3, 4}
        sizes.add(len(row))
    assert sizes > {3}  # replicate sizes vary with the patients drawn
    again = bootstrap_indices(5, 300, 0, groups=patients)
    assert all(np.array_equal(a, b) for a, b in zip(rows, again))
    assert not all(np.array_equal(a, b) for a, b in zip(rows, bootstrap_indices(5, 300, 1, groups=patients)))


def test_one_image_per_patient_is_the_image_bootstrap():
    """RSNA: each patientId is its own patient, so both units give the same resamples."""
    ids = [f"r{i:02d}" for i in range(30)]
    image = bootstrap_indices(30, 100, 3)
    patient = bootstrap_indices(30, 100, 3, groups=ids)
    assert all(np.array_equal(a, b) for a, b in zip(image, patient))


def test_patient_unit_widens_the_ci_of_clustered_scores():
    """Images of one patient share most of their score: resampling images treats them as
    independent and gives too narrow an interval."""
    rng = np.random.default_rng(0)
    patient_effect = rng.normal(0, 1, 40)
    patients = np.repeat(np.arange(40), 5).astype(str)  # 200 images, 5 per patient
    scores = patient_effect[patients.astype(int)] + rng.normal(0, 0.1, 200)
    width = {}
    for unit, groups in (("image", None), ("patient", patients)):
        reps = mean_replicates(scores, bootstrap_indices(200, 1000, 0, groups=groups))
        low, high = percentile_ci(reps)
        width[unit] = high - low
    assert width["patient"] > 1.8 * width["image"]


def test_sum_replicates_of_unequal_resamples():
    values = np.arange(10, dtype=float).reshape(5, 2)
    rows = [np.array([0, 0, 1]), np.array([4]), np.array([2, 3])]
    np.testing.assert_array_equal(sum_replicates(values, rows), [[2, 5], [8, 9], [10, 12]])
    np.testing.assert_allclose(mean_replicates(values[:, 0], rows), [2 / 3, 8, 5])


def test_cluster_bootstrap_is_fast_at_full_size():
    import time

    patients = np.random.default_rng(0).integers(0, 700, 2000).astype(str)
    start = time.perf_counter()
    rows = bootstrap_indices(2000, 1000, 0, groups=patients)
    reps = mean_replicates(np.random.default_rng(1).random(2000), rows)
    assert time.perf_counter() - start < 2.0
    assert reps.shape == (1000,)


def test_plan_records_unit_and_fingerprints_of_ids_and_grouping():
    ids = ["a", "b", "c"]
    _, rec = bootstrap_plan(ids, ["p", "p", "q"], "patient", 10, 0)
    assert rec["unit"] == "patient" and rec["resamples"] == 10 and rec["seed"] == 0
    assert rec["n_units"] == 2
    _, regrouped = bootstrap_plan(ids, ["p", "q", "q"], "patient", 10, 0)
    assert regrouped["ids_sha256"] == rec["ids_sha256"]
    assert regrouped["groups_sha256"] != rec["groups_sha256"]
    indices, image = bootstrap_plan(ids, ["p", "p", "q"], "image", 10, 0)
    assert image["unit"] == "image" and image["n_units"] == 3
    assert all(np.array_equal(a, b) for a, b in zip(indices, bootstrap_indices(3, 10, 0)))
    with pytest.raises(ValueError, match="unit"):
        bootstrap_plan(ids, None, "study", 10, 0)
    with pytest.raises(ValueError, match="patient"):
        bootstrap_plan(ids, None, "patient", 10, 0)


def test_with_ci_counts_dropped_resamples():
    result = with_ci(0.5, np.array([0.4, np.nan, 0.6, np.nan]), 0.95)
    assert result["dropped_resamples"] == 2
