"""Stage settings: built from the validated demo and paper configs, round-tripped through rule
params, strict about keys, and without defaults of their own (the schema holds them)."""

import dataclasses
from pathlib import Path

import pytest

from crrg_clip import settings as S
from crrg_clip.config import load_config, load_schema, validate_config

ROOT = Path(__file__).resolve().parents[1]

# stage -> the wildcard values of each of its rules' jobs
STAGE_KEYS = {
    "detector": [{"variant": "rrg_base"}, {"variant": "rrg_opt"}],
    "selector": [{"variant": "rrg_base"}, {"variant": "rrg_opt"}],
    "generator": [{"variant": "rrg_base"}, {"variant": "rrg_opt"}],
    "generation": [{"variant": "rrg_base"}, {"variant": "rrg_opt"}],
    "clip": [{}],
    "convirt": [{"init": "random_init"}, {"init": "imagenet_init"}],
    "probe": [{}],
    "report_baseline": [{"baseline": "show_tell"}, {"baseline": "adaatt"}],
    "backtranslation": [{}],
}
CLASSES = [S.Schedule, S.DetectorSettings, S.SelectorSettings, S.GeneratorSettings, S.GenerationSettings,
           S.CLIPSettings, S.ProbeSettings, S.ReportBaselineSettings, S.BacktranslationSettings]

MINIMAL = {"data": {k: "x" for k in ("mimic_cxr_reports", "mimic_cxr_jpg", "imagenome", "rsna")},
           "rrg": {"variants": {"v": {"subsample": "s", "selection_pos_weight": 1.0, "max_new_tokens": 8,
                                      "detector": {"epochs": 1, "batch_size": 2, "lr": 1e-3},
                                      "selector": {"epochs": 1, "batch_size": 2, "lr": 1e-3},
                                      "generator": {"epochs": 1, "batch_size": 2, "lr": 1e-3}}}}}


def default_settings(stage: str, **keys):
    """A stage's settings with every value the schema's default (variant ``v``): for tests."""
    if stage in ("detector", "selector", "generator", "generation"):
        keys.setdefault("variant", "v")
    return S.stage_settings(validate_config(MINIMAL), stage, **keys)


@pytest.fixture(scope="module", params=["config.yaml", "paper.yaml"])
def config(request):
    return load_config(ROOT / "config" / request.param)


@pytest.mark.parametrize("stage", S.STAGES)
def test_every_stage_builds_and_round_trips_through_params(config, stage):
    for keys in STAGE_KEYS[stage]:
        settings = S.stage_settings(config, stage, **keys)
        params = S.to_params(settings)
        assert type(settings).from_params(params) == settings
        assert params == S.to_params(type(settings).from_params(params))
        _assert_plain(params)


def _assert_plain(value):
    if isinstance(value, dict):
        assert all(isinstance(k, str) for k in value)
        for v in value.values():
            _assert_plain(v)
    elif isinstance(value, list):
        for v in value:
            _assert_plain(v)
    else:
        assert value is None or isinstance(value, (str, int, float, bool)), value


def test_unknown_and_missing_keys_raise(config):
    settings = S.stage_settings(config, "clip")
    params = S.to_params(settings)
    with pytest.raises(ValueError, match="unknown key.*num_workers"):
        S.CLIPSettings.from_params({**params, "num_workers": 4})
    with pytest.raises(ValueError, match="missing key.*'lr'"):
        S.CLIPSettings.from_params({k: v for k, v in params.items() if k != "lr"})
    detector = S.to_params(S.stage_settings(config, "detector", variant="rrg_opt"))
    with pytest.raises(ValueError, match="Schedule: unknown key.*lr_typo"):  # nested too
        S.DetectorSettings.from_params({**detector, "schedule": {**detector["schedule"], "lr_typo": 1}})
    with pytest.raises(ValueError, match="DetectorSettings.model: unknown.*missing.*backbone"):
        S.DetectorSettings.from_params({**detector, "model": {**{k: v for k, v in detector["model"].items()
                                                                   if k != "backbone"}, "typo": 1}})
    with pytest.raises(ValueError, match="unknown stage"):
        S.stage_settings(config, "detektor")
    with pytest.raises(TypeError, match="variant"):
        S.stage_settings(config, "detector")
    with pytest.raises(ValueError, match="rrg.variants has no variant"):
        S.stage_settings(config, "detector", variant="nope")


def test_run_time_choices_are_not_settings():
    for cls in CLASSES:
        names = {f.name for f in dataclasses.fields(cls)}
        assert not names & {"device", "torch_threads", "threads", "num_workers"}, cls.__name__


def test_changing_a_run_time_choice_changes_no_rule_param(config):
    """device, torch threads and loader workers must not rerun anything (a param change does)."""
    changed = validate_config({**config, "device": "cuda", "torch_threads": 7,
                               "rrg": {**config["rrg"], "detector_num_workers": 3},
                               "rclip": {**config["rclip"], "num_workers": 5},
                               "probe": {**config["probe"], "num_workers": 6}})
    for stage, jobs in STAGE_KEYS.items():
        for keys in jobs:
            assert S.to_params(S.stage_settings(changed, stage, **keys)) == \
                S.to_params(S.stage_settings(config, stage, **keys)), (stage, keys)


def test_no_settings_default_disagrees_with_the_schema():
    schedule = load_schema()["$defs"]["stage_schedule"]["properties"]
    for cls in CLASSES:
        for f in dataclasses.fields(cls):
            has_default = f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING
            if cls is S.Schedule and has_default:
                assert f.default == schedule[f.name]["default"], f.name
            else:
                assert not has_default, f"{cls.__name__}.{f.name} has a default outside the schema"


def test_values_come_from_the_config_as_the_rules_passed_them(config):
    rrg, rclip = config["rrg"], config["rclip"]
    detector = S.stage_settings(config, "detector", variant="rrg_opt")
    assert detector.schedule == S.Schedule(**rrg["variants"]["rrg_opt"]["detector"])
    assert detector.model["normalize_mean"] == rrg["normalize"]["mean"] and detector.augment == rrg["augment"]
    assert detector.jpeg_draft == config["image_cache"]["jpeg_draft"]
    selector = S.stage_settings(config, "selector", variant="rrg_base")
    assert selector.selection_pos_weight == rrg["variants"]["rrg_base"]["selection_pos_weight"]
    generator = S.stage_settings(config, "generator", variant="rrg_opt")
    assert generator.gpt2_source == S.model_source(rrg["generator_model"], "gpt2")
    generation = S.stage_settings(config, "generation", variant="rrg_opt")
    assert generation.max_new_tokens == rrg["variants"]["rrg_opt"]["max_new_tokens"]
    assert (generation.similarity, generation.threshold) == (rrg["dedup"]["similarity"], rrg["dedup"]["threshold"])
    clip = S.stage_settings(config, "clip")
    assert clip.image_weights == rclip["image_weights"] and clip.convirt == {}
    assert clip.text_model == S.model_source(rclip["text_model"], "bert")
    random_init = S.stage_settings(config, "convirt", init="random_init")
    imagenet = S.stage_settings(config, "convirt", init="imagenet_init")
    assert random_init.image_weights is None and imagenet.image_weights == rclip["image_weights"]
    assert random_init.loss == "convirt" and random_init.epochs == (config["convirt"]["epochs"] or rclip["epochs"])
    assert random_init.convirt["temperature"] == config["convirt"]["temperature"]
    probe = S.stage_settings(config, "probe")
    assert (probe.arch, probe.normalization) == (rclip["image_encoder"], rclip["normalization"])
    baseline = S.stage_settings(config, "report_baseline", baseline="adaatt")
    assert baseline.model == "adaatt" and baseline.grid == config["baselines"]["adaatt"]["grid"]
    assert baseline.normalize == rrg["normalize"] and baseline.backbone_weights == rrg["backbone_weights"]


def test_demo_model_sources_resolve_to_the_built_folders():
    assert S.model_source("demo", "gpt2") == "results/pretrained/gpt2"
    assert S.model_source("healx/gpt-2-pubmed-medium", "gpt2") == "healx/gpt-2-pubmed-medium"
    demo = load_config(ROOT / "config" / "config.yaml")
    bt = S.stage_settings(demo, "backtranslation")
    assert (bt.en_it_model, bt.it_en_model) == ("results/pretrained/marian_en_it", "results/pretrained/marian_it_en")
    assert S.stage_settings(demo, "clip").text_model == "results/pretrained/bert"


def test_default_settings_helper_uses_schema_defaults():
    assert default_settings("probe").schedule == "constant"
    assert default_settings("detector").schedule == S.Schedule(epochs=1, batch_size=2, lr=1e-3)
