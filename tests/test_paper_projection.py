"""benchmarks/project_paper_run.py: the projection arithmetic on a tiny fake throughput table."""

import importlib.util
import json
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"


def _module(name):
    sys.path.insert(0, str(BENCH))
    spec = importlib.util.spec_from_file_location(name, BENCH / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up here
    spec.loader.exec_module(module)
    return module


projection = _module("project_paper_run")
throughputs = _module("throughputs")

GPU = "cuda:FakeGPU"
CPU = "cpu (host of FakeGPU)"


def entry(name, value, device=GPU, **extra):
    return {"name": name, "value": value, "unit": "items/s", "device": device, "measured_on": "2030-01-01",
            "source": "fake", **extra}


def fake_table():
    names = ["detector_train_real_fp32_b16", "detector_predict_real_fp32_b16", "selector_train_real_fp32_b16",
             "generator_train_medium_fp32_b8", "generator_train_medium_fp32_b64", "generation_medium_fp32_b8",
             "generation_medium_fp32_b64", "backtranslation_marian_base_report_b128", "clip_train_real_bf16_b32",
             "clip_image_tower_real_bf16_b32"]
    table = {n: entry(n, 10.0) for n in names}
    for n in ["scene_graph_parse_per_core", "jpeg_decode_letterbox_512_per_core",
              "dicom_decode_letterbox_256_per_core", "evaluate_rrg_reports_per_s"]:
        table[n] = entry(n, 1.0, CPU)
    return table


def fake_config():
    schedule = {"epochs": 2, "batch_size": 1}
    return {
        "seeds": [0],
        "qc": {"scene_graph_shards": 4},
        "subsamples": {"small": {"train": 60, "valid": 12, "test": 30}},
        "rrg": {"generation_batch_size": 8, "generator_amp": "none",
                "variants": {"v": {"subsample": "small", "detector": schedule, "selector": schedule,
                                   "generator": schedule}},
                "report_images": {"variant": "v"}},
        "rclip": {"subsample": "small", "epochs": 3, "amp": "bf16"},
        "probe": {"epochs": 1, "amp": "bf16"},
        "rsna": {"max_rows": {"train": 100, "valid": 10, "test": 20}, "train_subset": 0.1},
    }


ASSUME = {**projection.ASSUMPTIONS, "sentence_regions_per_image": 2.0, "selected_regions_per_image": 3.0,
          "generated_tokens_per_sentence": 20, "forward_only_speedup": 2.0, "cpu_cores": 2,
          "cpu_parallel_efficiency": 0.5, "scene_graph_files": 100, "images_per_study": 1.0}


def run(table=None, config=None):
    jobs = projection.plan(config or fake_config(), ASSUME)
    return jobs, projection.project(jobs, table or fake_table(), "FakeGPU")


def test_per_rule_minutes_follow_items_over_throughput():
    _, result = run()
    minutes = result["per_rule_minutes"]
    # detector: 2 epochs x 60 train images at 10/s + 2 x 12 validation images at 10/s
    assert minutes["train_detector[v]"] == pytest.approx((120 + 24) / 10 / 60, abs=1e-3)
    # generator: 2 epochs x 60 images x 2 sentences, validation forward-only (2x faster)
    assert minutes["train_generator[v]"] == pytest.approx((240 / 10 + 48 / 20) / 60, abs=1e-3)
    # generation: 30 test images x 3 selected regions at 10 sentences/s
    assert minutes["generate_reports[v]"] == pytest.approx(90 / 10 / 60, abs=1e-3)
    assert minutes["generate_reports_for[v,small_train]"] == pytest.approx(180 / 10 / 60, abs=1e-3)
    # scene graphs: 100 files at 1 file/s per core on min(4 shards, 2 cores) x 0.5 efficiency
    assert minutes["parse_scene_graphs"] == pytest.approx(100 / 1.0 / 60, abs=1e-3)
    assert result["total_minutes"] == pytest.approx(sum(minutes.values()), abs=0.01)
    assert result["verified"] is True


def test_a_faster_throughput_shortens_only_its_rules():
    table = fake_table()
    table["generation_medium_fp32_b8"]["value"] = 20.0
    _, before = run()
    _, after = run(table)
    assert after["per_rule_minutes"]["generate_reports[v]"] == pytest.approx(
        before["per_rule_minutes"]["generate_reports[v]"] / 2, abs=1e-3)
    assert after["per_rule_minutes"]["train_detector[v]"] == before["per_rule_minutes"]["train_detector[v]"]


def test_batch_size_picks_the_benchmarked_batch():
    config = fake_config()
    config["rrg"]["generation_batch_size"] = 64
    table = fake_table()
    table["generation_medium_fp32_b64"]["value"] = 40.0
    _, result = run(table, config)
    assert "generation_medium_fp32_b64" in result["throughputs_used"]
    assert "generation_medium_fp32_b8" not in result["throughputs_used"]


@pytest.mark.parametrize("change, reason", [
    ({"estimate": True}, "estimate"),
    ({"stale": "code changed"}, "stale"),
    ({"device": "cuda:OtherGPU"}, "OtherGPU"),
])
def test_verified_only_when_every_throughput_is_measured_on_that_gpu_with_todays_code(change, reason):
    table = fake_table()
    table["clip_train_real_bf16_b32"].update(change)
    _, result = run(table)
    assert result["verified"] is False
    used = result["throughputs_used"]["clip_train_real_bf16_b32"]
    assert used["verified"] is False and reason in used["why_not"]


def test_missing_throughput_is_an_error():
    table = fake_table()
    del table["selector_train_real_fp32_b16"]
    with pytest.raises(KeyError, match="selector_train_real_fp32_b16"):
        run(table)


def test_fractions_are_refused():
    config = fake_config()
    config["subsamples"]["small"]["train"] = 0.5
    with pytest.raises(ValueError, match="counts"):
        projection.plan(config, ASSUME)


def test_record_replaces_an_entry_and_clears_its_stale_mark(tmp_path):
    path = tmp_path / "throughputs.json"
    throughputs.save({"a": entry("a", 1.0, stale="old code")}, path)
    throughputs.record("a", 2.5, "items/s", GPU, "bench.md", path=path)
    table = throughputs.load(path)
    assert table["a"]["value"] == 2.5 and "stale" not in table["a"]
    assert json.loads(path.read_text())["throughputs"][0]["name"] == "a"


def test_the_committed_table_and_projection_agree():
    table = throughputs.load()
    result = json.loads((BENCH / "results" / "paper_run_projection.json").read_text())
    for name, used in result["throughputs_used"].items():
        assert table[name]["value"] == used["value"], name
    assert set(result) >= {"total_minutes", "per_rule_minutes", "measured_on", "verified"}
