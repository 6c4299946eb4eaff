"""Seed summaries and paired differences refuse metrics files whose resamples differ."""

import hashlib
import json

import pytest

from crrg_clip.evaluate.aggregate import paired_difference, summarize


def doc(path, seed, value, **bootstrap):
    boot = {"unit": "patient", "resamples": 3, "seed": 0, "confidence": 0.95, "ids_sha256": "ids",
            "groups_sha256": "groups", **bootstrap,
            "replicates": {"AUC": [value - 0.01, float("nan"), value + 0.01]}}
    path.write_text(json.dumps({"system": "s", "kind": "probe", "seed": seed,
                                "metrics": {"AUC": {"value": value, "ci_low": 0, "ci_high": 1}},
                                "bootstrap": boot}))
    return path


@pytest.mark.parametrize("changed", [{"unit": "image"}, {"groups_sha256": "other grouping"},
                                     {"ids_sha256": "other ids"}, {"resamples": 4}])
def test_seeds_on_other_resamples_are_refused(tmp_path, changed):
    a = doc(tmp_path / "a.json", 0, 0.8)
    b = doc(tmp_path / "b.json", 1, 0.9, **changed)
    with pytest.raises(ValueError, match="b.json: bootstrap"):
        summarize([a, b])
    with pytest.raises(ValueError, match="b.json: bootstrap"):
        paired_difference([a], [b], "AUC")


def test_summary_records_each_metrics_file_hash_and_dropped_resamples(tmp_path):
    paths = [doc(tmp_path / "a.json", 0, 0.8), doc(tmp_path / "b.json", 1, 0.9)]
    summary = summarize(paths)
    assert summary["metrics_sha256"] == {str(p): hashlib.sha256(p.read_bytes()).hexdigest() for p in paths}
    assert summary["bootstrap"]["unit"] == "patient" and summary["bootstrap"]["groups_sha256"] == "groups"
    assert summary["metrics"]["AUC"]["dropped_resamples"] == 1  # replicate 1 undefined in both seeds
