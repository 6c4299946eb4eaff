"""crrg_clip.systems: the one place that knows system and encoder names and their files."""

from pathlib import Path

import pytest

from crrg_clip.config import load_config
from crrg_clip.systems import PROBE_ENCODERS, Systems, clip_folder, parse_encoder, rrg_row_name

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def demo():
    return load_config(ROOT / "config" / "config.yaml")


def with_changes(config, **sections):
    out = {**config}
    for name, values in sections.items():
        out[name] = {**config[name], **values}
    return out


def test_table1_systems_in_order_with_kinds_and_seeds(demo):
    config = with_changes(demo, evaluation={"external_systems": {"gpt4o": "reports/gpt4o.parquet"}})
    config["seeds"] = [3, 4]
    systems = Systems(config)
    names = systems.rrg_systems()
    variants = list(demo["rrg"]["variants"])
    assert names[:len(variants)] == variants
    assert names[-1] == "external-gpt4o"
    assert {systems.kind(n) for n in names} == {"rrg", "baseline", "external"}
    assert systems.system_seeds("rrg_opt") == [3, 4]
    assert systems.system_seeds("rrg_opt-most_frequent") == [3]  # untrained: evaluated once
    assert systems.system_seeds("external-gpt4o") == [3]
    for baseline in systems.baselines:  # S&T / AdaAtt are trained once per seed
        assert systems.system_seeds(baseline) == [3, 4]


def test_every_system_is_scored_on_the_common_test_split_except_an_external_one(demo):
    config = with_changes(demo, evaluation={"external_systems": {"x": "x.parquet"},
                                            "external_subsample": "rrg_base", "test_subsample": None})
    systems = Systems(config)
    main = demo["rrg"]["variants"]["rrg_opt"]["subsample"]
    assert systems.test_subsample() == main
    assert {systems.eval_subsample(s) for s in systems.rrg_systems() if s != "external-x"} == {main}
    assert systems.eval_subsample("external-x") == "rrg_base"
    # the dataset cell: what a system learnt from
    assert systems.training_subsample("rrg_base") == demo["rrg"]["variants"]["rrg_base"]["subsample"]
    assert systems.training_subsample("rrg_base-most_frequent") == systems.training_subsample("rrg_base")


def test_report_files_per_kind(demo):
    systems = Systems(with_changes(demo, evaluation={"external_systems": {"x": "elsewhere/x.parquet"}}))
    assert systems.reports("rrg_opt", 1) == "results/rrg/rrg_opt/seed1/reports_test.parquet"
    assert systems.reports("rrg_base-most_frequent", 0) == \
        "results/rrg/rrg_base/baselines/most_frequent/reports_test.parquet"
    assert systems.reports("external-x", 0) == "elsewhere/x.parquet"
    assert systems.predictions("rrg_opt", 2) == "results/rrg/rrg_opt/seed2/predictions_test.parquet"
    assert systems.predictions("rrg_opt-most_frequent", 0) is None
    assert systems.model_dirs("rrg_opt", 0)[0] == "results/rrg/rrg_opt/seed0/detector"
    assert systems.model_dirs("external-x", 0) == []
    if "show_tell" in systems.baselines:
        assert systems.reports("show_tell", 1) == "results/rrg/baselines/show_tell/seed1/reports_test.parquet"
        assert systems.model_dirs("show_tell", 1) == ["results/rrg/baselines/show_tell/seed1/model"]


def test_comparisons_pair_each_variant_with_its_own_most_frequent_report(demo):
    systems = Systems(demo)
    assert systems.comparison_reference("rrg_base") == "rrg_base-most_frequent"
    assert systems.comparison_reference("show_tell") == "rrg_opt-most_frequent"  # the main variant's
    assert systems.rrg_comparison("rrg_opt") == "results/metrics/rrg/rrg_opt/vs_most_frequent.json"
    assert systems.rrg_comparison("rrg_opt-most_frequent") is None
    off = Systems(with_changes(demo, evaluation={"most_frequent_baseline": False}))
    assert off.compared_systems() == [] and off.rrg_comparison("rrg_opt") is None
    assert not any(s.endswith("-most_frequent") for s in off.rrg_systems())


def test_probe_encoders_follow_the_image_weights_and_convirt_settings(demo):
    plain = Systems(with_changes(demo, rclip={"image_weights": None}, convirt={"enabled": True}))
    assert plain.probe_encoders() == ["rclip_radiologist", "rclip_generated", "random_init", "convirt_random_init"]
    weights = Systems(with_changes(demo, rclip={"image_weights": "w.pth"}, convirt={"enabled": True}))
    assert weights.probe_encoders() == ["rclip_radiologist", "rclip_generated", "random_init", "imagenet_init",
                                        "convirt_random_init", "convirt_imagenet_init"]
    no_convirt = Systems(with_changes(demo, convirt={"enabled": False}))
    assert not any(e.startswith("convirt") for e in no_convirt.probe_encoders())
    assert Systems.probe_comparison("random_init") is None
    assert Systems.probe_comparison("rclip_generated") == "results/metrics/probe/rclip_generated/vs_random_init.json"


def test_encoder_names_parse_one_way():
    assert parse_encoder("rclip_generated").family == "rclip"
    assert parse_encoder("rclip_generated").source == "generated"
    assert parse_encoder("convirt_imagenet_init").source == "imagenet_init"
    assert parse_encoder("imagenet_init").family == "imagenet_init"
    assert not parse_encoder("random_init").has_clip_folder
    assert clip_folder("rclip_radiologist", 2) == "results/rclip/radiologist/seed2/clip"
    assert clip_folder("convirt_random_init", 0) == "results/rclip/convirt/random_init/seed0/clip"
    assert clip_folder("random_init", 0) is None
    assert all(parse_encoder(e).name == e for e in PROBE_ENCODERS)
    with pytest.raises(ValueError, match="unknown probe encoder 'rclip'"):
        parse_encoder("rclip")


def test_display_names():
    assert rrg_row_name("rrg_opt") == "RRG-opt"
    assert rrg_row_name("rrg_base-most_frequent") == "Most-frequent report (RRG-base split)"
    assert rrg_row_name("show_tell") == "S&T (ours)"
    assert rrg_row_name("external-GPT-4o") == "GPT-4o"
