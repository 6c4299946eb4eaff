import numpy as np
import pytest

from crrg_clip.evaluate.bootstrap import bootstrap_indices, mean_replicates, percentile_ci, with_ci


def test_indices_deterministic_per_seed():
    a, b, c = bootstrap_indices(50, 200, 7), bootstrap_indices(50, 200, 7), bootstrap_indices(50, 200, 8)
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
