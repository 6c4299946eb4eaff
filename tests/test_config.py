from pathlib import Path

import pytest
import yaml

from crrg_clip.config import ConfigError, load_config, validate_config

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("name", ["config.yaml", "paper.yaml"])
def test_shipped_configs_validate(name):
    config = load_config(ROOT / "config" / name)
    assert set(config["rrg"]["variants"]) == {"rrg_base", "rrg_opt"}
    # defaults come from the schema
    assert config["rclip"]["temperature_init"] == pytest.approx(0.07)


def test_paper_config_pins_appendix_table4():
    variants = load_config(ROOT / "config" / "paper.yaml")["rrg"]["variants"]
    base, opt = variants["rrg_base"], variants["rrg_opt"]
    assert [base[s]["epochs"] for s in ("detector", "selector", "generator")] == [2, 2, 2]
    assert [opt[s]["epochs"] for s in ("detector", "selector", "generator")] == [10, 10, 5]
    assert [opt[s]["batch_size"] for s in ("detector", "selector", "generator")] == [16, 16, 1]
    assert [base[s]["batch_size"] for s in ("detector", "selector", "generator")] == [16, 16, 8]
    assert [base[s]["lr"] for s in ("detector", "selector", "generator")] == [0.01, 1e-4, 1e-4]
    assert [opt[s]["lr"] for s in ("detector", "selector", "generator")] == [1e-3, 5e-5, 5e-5]
    assert {base[s]["factor"] for s in ("detector", "selector", "generator")} == {0.3}
    assert {opt[s]["factor"] for s in ("detector", "selector", "generator")} == {0.5}
    assert {v[s]["cooldown"] for v in (base, opt) for s in ("detector", "selector", "generator")} == {5}
    assert [base[s]["patience"] for s in ("detector", "selector", "generator")] == [5, 10, 10]
    assert [opt[s]["patience"] for s in ("detector", "selector", "generator")] == [5, 5, 3]
    # evaluation interval (steps): RGRG's EVALUATE_EVERY_K_STEPS; the demo keeps once per epoch
    assert {v[s]["eval_every"] for v in (base, opt) for s in ("selector", "generator")} == {5000}
    assert {v["detector"]["eval_every"] for v in (base, opt)} == {3500}
    demo = load_config(ROOT / "config" / "config.yaml")["rrg"]["variants"]
    assert {v[s]["eval_every"] for v in demo.values() for s in ("detector", "selector", "generator")} == {None}
    assert base["max_new_tokens"] == 500 and opt["max_new_tokens"] == 300
    assert base["selection_pos_weight"] == 1.0 and opt["selection_pos_weight"] == 2.0


def test_unknown_key_is_named():
    config = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
    config["rrg"]["bakbone"] = "resnet50"
    with pytest.raises(ConfigError, match=r"rrg\.bakbone"):
        validate_config(config)


def test_wrong_type_is_named():
    config = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
    config["rclip"]["epochs"] = "five"
    with pytest.raises(ConfigError, match=r"rclip\.epochs"):
        validate_config(config)


def test_missing_data_root_is_named():
    config = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
    del config["data"]["rsna"]
    with pytest.raises(ConfigError, match="rsna"):
        validate_config(config)


def test_fraction_and_count_sizes():
    config = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
    config["subsamples"]["x"] = {"train": 0.5, "valid": 10, "test": 1.0}
    validated = validate_config(config)
    assert isinstance(validated["subsamples"]["x"]["train"], float)
    assert isinstance(validated["subsamples"]["x"]["valid"], int)
    config["subsamples"]["x"]["train"] = 1.5  # neither a fraction nor an integer count
    with pytest.raises(ConfigError, match=r"subsamples\.x\.train"):
        validate_config(config)


def _leaf_keys(tree, prefix=()):
    for key, value in tree.items():
        if isinstance(value, dict) and value:
            yield from _leaf_keys(value, prefix + (key,))
        else:
            yield prefix + (key,)


def test_paper_config_overrides_every_demo_value():
    """`--configfile config/paper.yaml` is merged over the Snakefile's config.yaml, so every
    value the demo sets must be set by paper.yaml too, or a demo value would leak into a
    real run. Only demo-only sections may stay unset."""
    demo = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
    paper = yaml.safe_load((ROOT / "config" / "paper.yaml").read_text())
    demo_only = {"synthetic", "demo_models"}
    missing = []
    for path in _leaf_keys(demo):
        if path[0] in demo_only:
            continue
        node = paper
        for key in path:
            if not isinstance(node, dict) or key not in node:
                missing.append(".".join(map(str, path)))
                break
            node = node[key]
    assert not missing, f"paper.yaml leaves demo values in force: {missing}"
