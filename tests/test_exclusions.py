"""Exclusion log: write/merge round trip, summary and the threshold check."""

from pathlib import Path

import pytest

from crrg_clip.backtranslate import counts_table
from crrg_clip.data.exclusions import (
    ExclusionLog, ExclusionThresholdError, backtranslation_summary, check_threshold, merge_exclusions, merge_kept, read_exclusions,
    summarise, write_kept,
)


def test_write_merge_summary_threshold(tmp_path: Path):
    a, b = ExclusionLog(), ExclusionLog()
    a.add("mimic-cxr-jpg", "d1", "missing_jpg")
    a.add("mimic-cxr-jpg", "d2", "truncated_jpg")
    b.add("rsna", "p1", "unreadable_dcm")
    b.add("rsna", "p2", "over_split_cap")
    b.add("rsna", "p3", "over_split_cap")
    a.write(tmp_path / "a.tsv")
    b.write(tmp_path / "b.tsv")
    assert list(read_exclusions(tmp_path / "a.tsv").columns) == ["dataset", "item_id", "reason"]
    write_kept({"mimic-cxr-jpg": 8}, tmp_path / "a.kept.tsv")
    write_kept({"rsna": 2}, tmp_path / "b.kept.tsv")
    merged = merge_exclusions([tmp_path / "a.tsv", tmp_path / "b.tsv", tmp_path / "a.tsv"])
    assert len(merged) == 5  # a part read twice does not double its rows
    summary = summarise(merged, merge_kept([tmp_path / "a.kept.tsv", tmp_path / "b.kept.tsv"]))
    assert list(summary.columns) == ["dataset", "status", "reason", "count"]
    rows = {(d, s, r): n for d, s, r, n in summary.itertuples(index=False)}
    assert rows[("mimic-cxr-jpg", "kept", "ok")] == 8 and rows[("rsna", "excluded", "over_split_cap")] == 2
    check_threshold(summary, 0.2)  # jpg 2/10; rsna 1/5 once the by-design cap is ignored
    with pytest.raises(ExclusionThresholdError, match=r"mimic-cxr-jpg: 20.0% .*missing_jpg=1"):
        check_threshold(summary, 0.1)
    with pytest.raises(ExclusionThresholdError, match="rsna: 60.0%"):
        check_threshold(summary, 0.5, ignore_reasons=())


def test_empty_log_writes_a_header(tmp_path: Path):
    ExclusionLog().write(tmp_path / "e.tsv")
    assert (tmp_path / "e.tsv").read_text().strip() == "dataset\titem_id\treason"
    assert merge_exclusions([tmp_path / "e.tsv"]).empty


def test_backtranslation_counts_join_the_summary_with_their_unit(tmp_path: Path):
    counts_table({"ok": 5, "empty": 2}, "sentence").to_csv(tmp_path / "backtranslation_generated.tsv",
                                                           sep="\t", index=False)
    summary = backtranslation_summary(summarise(merge_exclusions([]), merge_kept([])),
                                      [tmp_path / "backtranslation_generated.tsv"])
    rows = {(d, s, r): n for d, s, r, n in summary.itertuples(index=False)}
    assert rows[("backtranslation-generated", "ok", "ok (sentences)")] == 5
    assert rows[("backtranslation-generated", "fallback", "empty (sentences)")] == 2
    (tmp_path / "backtranslation_old.tsv").write_text("reason\tcount\nok\t3\n")
    with pytest.raises(ValueError, match="backtranslation_old.tsv: expected columns reason, count, unit"):
        backtranslation_summary(summary, [tmp_path / "backtranslation_old.tsv"])


def test_rrg_stages_left_out_counts_join_the_summary(tmp_path: Path):
    """Issue 14 item 23: one row per RRG stage, split and reason, from each run.json."""
    import json

    from crrg_clip.data.exclusions import rrg_left_out_summary

    detector = tmp_path / "rrg" / "rrg_base" / "seed0" / "detector"
    generator = tmp_path / "rrg" / "rrg_base" / "seed0" / "generator"
    for folder, left_out in (
            (detector, {"train": {"missing_from_cache": {"count": 2, "ids": ["a", "b"]},
                                  "no_valid_box": {"count": 0, "ids": []}}}),
            (generator, {"valid": {"sentences_of_undetected_regions": 7, "images_without_a_target": ["c"]}})):
        folder.mkdir(parents=True)
        (folder / "run.json").write_text(json.dumps({"summary": {"left_out": left_out}}))
    summary = rrg_left_out_summary(summarise(merge_exclusions([]), merge_kept([])),
                                   [detector / "run.json", generator])
    rows = {(d, s, r): n for d, s, r, n in summary.itertuples(index=False)}
    assert rows == {("rrg-rrg_base-seed0-detector", "left_out", "missing_from_cache (train)"): 2,
                    ("rrg-rrg_base-seed0-detector", "left_out", "no_valid_box (train)"): 0,
                    ("rrg-rrg_base-seed0-generator", "left_out", "sentences_of_undetected_regions (valid)"): 7,
                    ("rrg-rrg_base-seed0-generator", "left_out", "images_without_a_target (valid)"): 1}
    (detector / "run.json").write_text(json.dumps({"summary": {}}))
    with pytest.raises(ValueError, match="no summary.left_out"):
        rrg_left_out_summary(summary, [detector / "run.json"])
