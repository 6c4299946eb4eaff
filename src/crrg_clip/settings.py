"""Each stage's settings: exactly the values that change what the stage writes.

``stage_settings(config, stage, **keys)`` builds them from the validated config (defaults come
from ``workflow/schemas/config.schema.yaml`` only, never from here); a rule passes
``to_params(...)`` as its ``settings`` param and the job reads it back with ``from_params``.
Run-time choices (device, torch threads, DataLoader workers) change how fast a job runs, not
what it writes, so they are not settings (``crrg_clip.runtime.start_job``).

Torch-free on purpose: the Snakefile imports this module when it plans the workflow.
"""

from __future__ import annotations

import copy
import dataclasses
import typing
from dataclasses import dataclass
from typing import Any, Mapping

from .systems import CONVIRT_INITS

# What a model source of "demo" means: the folder the workflow builds (rules build_demo_*)
DEMO_MODEL_DIRS = {
    "gpt2": "results/pretrained/gpt2",
    "bert": "results/pretrained/bert",
    "marian_en_it": "results/pretrained/marian_en_it",
    "marian_it_en": "results/pretrained/marian_it_en",
}


def model_source(value: str, name: str) -> str:
    """A configured model source: ``demo`` = the workflow's built folder ``name``, else the value itself."""
    return DEMO_MODEL_DIRS[name] if value == "demo" else value


class _Settings:
    """``from_params``: the inverse of ``to_params``, strict about keys (a typo must not pass silently)."""

    @classmethod
    def from_params(cls, values: Mapping[str, Any]):
        names = [f.name for f in dataclasses.fields(cls)]
        unknown, missing = sorted(set(values) - set(names)), [n for n in names if n not in values]
        if unknown or missing:
            raise ValueError(f"{cls.__name__}: unknown key(s) {unknown}, missing key(s) {missing}")
        hints = typing.get_type_hints(cls)
        return cls(**{name: hints[name].from_params(values[name])
                      if isinstance(hints[name], type) and issubclass(hints[name], _Settings)
                      else copy.deepcopy(values[name]) for name in names})


def to_params(settings) -> dict:
    """Plain JSON-able values (a Snakemake ``params:`` entry; a change reruns the rule)."""
    return dataclasses.asdict(settings)


@dataclass(frozen=True)
class Schedule(_Settings):
    """A RRG stage's schedule (``rrg.variants[v].detector`` / ``.selector`` / ``.generator``).

    The one settings class with defaults, so tests can write a schedule by hand; they are the
    schema's ``$defs.stage_schedule`` defaults (tests/test_settings.py checks).
    """

    epochs: int
    batch_size: int
    lr: float
    weight_decay: float = 0.01
    factor: float = 0.5
    cooldown: int = 5
    patience: int = 5
    eval_every: int | None = None  # validate (and step the scheduler) every K steps too; None/0 = per epoch


# rrg keys that make up the detector's DetectorConfig (frozen_batchnorm follows backbone_weights)
DETECTOR_MODEL_KEYS = ("backbone", "image_size", "anchor_sizes", "anchor_ratios", "roi_output_size",
                       "detection_min_score", "detection_rule", "rpn_pre_nms_top_n", "rpn_post_nms_top_n",
                       "box_batch_size_per_image")


@dataclass(frozen=True)
class DetectorSettings(_Settings):
    model: dict  # DetectorConfig fields: DETECTOR_MODEL_KEYS + normalize_mean, normalize_std
    backbone_weights: str | None
    schedule: Schedule
    augment: dict  # AugmentConfig fields (rrg.augment)
    amp: str  # rrg.detector_amp (CUDA only)
    channels_last: bool  # rrg.detector_channels_last (CUDA only)
    jpeg_draft: bool  # image_cache.jpeg_draft: recorded in config.json beside the cache size

    def __post_init__(self):
        expected = {*DETECTOR_MODEL_KEYS, "normalize_mean", "normalize_std"}
        if set(self.model) != expected:  # a missing key would silently take DetectorConfig's default
            raise ValueError(f"DetectorSettings.model: unknown {sorted(set(self.model) - expected)}, "
                             f"missing {sorted(expected - set(self.model))}")


@dataclass(frozen=True)
class SelectorSettings(_Settings):
    region_feature_dim: int
    abnormal_classifier: bool
    selection_pos_weight: float
    abnormal_pos_weight: float
    selection_threshold: float | str  # a logit, or "valid_f1"
    schedule: Schedule


@dataclass(frozen=True)
class GeneratorSettings(_Settings):
    gpt2_source: str
    freeze_gpt2: bool
    input_kind: str  # rrg.generator_input
    feature_dim: int  # rrg.region_feature_dim (the detector's channels replace it for detector_features)
    hidden_dim: int  # rrg.conditioning_dim
    max_sentence_tokens: int
    amp: str
    schedule: Schedule


@dataclass(frozen=True)
class GenerationSettings(_Settings):
    """Rules generate_reports / generate_reports_for."""

    num_beams: int
    max_new_tokens: int
    batch_size: int
    similarity: str
    threshold: float
    amp: str


@dataclass(frozen=True)
class CLIPSettings(_Settings):
    """R-CLIP pretraining; ConVIRT is the same with ``loss="convirt"`` and the ``convirt`` section."""

    image_encoder: str
    image_weights: str | None
    text_model: str
    image_size: int
    max_text_tokens: int
    projection_dim: int
    temperature_init: float
    image_to_image_loss_weight: float
    text_to_text_loss_weight: float
    loss_ratio: float
    epochs: int
    batch_size: int
    lr: float
    weight_decay: float
    warmup_epochs: float
    normalize: dict
    normalization: str  # "dataset" or "imagenet" (data/normalize.py)
    unit: str  # "image" or "study" (data/clip_dataset.py)
    augment: dict
    amp: str
    channels_last: bool
    loss: str  # "cxr_clip" or "convirt" (models/convirt.py)
    convirt: dict  # the convirt section's model and optimiser keys ({} for cxr_clip)


@dataclass(frozen=True)
class ProbeSettings(_Settings):
    epochs: int
    batch_size: int
    lr: float
    weight_decay: float
    schedule: str  # "constant" or "cosine" (with warmup_epochs of linear warm-up)
    warmup_epochs: float
    clahe: dict  # CLAHEConfig fields; p 0 = off
    standardize: bool
    image_size: int
    crop_scale: list
    color_jitter: dict
    amp: str
    arch: str  # rclip.image_encoder
    normalize: dict  # rclip.normalize
    normalization: str  # rclip.normalization


@dataclass(frozen=True)
class ReportBaselineSettings(_Settings):
    """One ``baselines.<model>`` section + the shared RRG image settings."""

    model: str  # "show_tell" or "adaatt"
    backbone: str
    backbone_weights: str | None
    freeze_encoder: bool
    image_size: int
    grid: int
    embed_dim: int
    hidden_dim: int
    attention_dim: int
    dropout: float
    vocab_min_count: int
    max_length: int
    epochs: int
    batch_size: int
    lr: float
    weight_decay: float
    grad_clip: float
    beam_size: int
    normalize: dict
    augment: dict


@dataclass(frozen=True)
class BacktranslationSettings(_Settings):
    en_it_model: str
    it_en_model: str
    unit: str
    num_beams: int
    do_sample: bool
    temperature: float
    batch_size: int
    max_length: int
    min_length_ratio: float
    max_length_ratio: float
    max_repeated_ngram_fraction: float
    repeated_ngram_size: int
    seed: int


# ------------------------------------------------------------------ building them from the config

def _variant(config: dict, variant: str) -> dict:
    variants = config["rrg"]["variants"]
    if variant not in variants:
        raise ValueError(f"rrg.variants has no variant {variant!r} (known: {sorted(variants)})")
    return variants[variant]


def _detector(config: dict, variant: str) -> DetectorSettings:
    rrg = config["rrg"]
    model = {**{k: rrg[k] for k in DETECTOR_MODEL_KEYS},
             "normalize_mean": rrg["normalize"]["mean"], "normalize_std": rrg["normalize"]["std"]}
    return DetectorSettings(model=model, backbone_weights=rrg["backbone_weights"],
                            schedule=Schedule.from_params(_variant(config, variant)["detector"]),
                            augment=dict(rrg["augment"]), amp=rrg["detector_amp"],
                            channels_last=rrg["detector_channels_last"], jpeg_draft=config["image_cache"]["jpeg_draft"])


def _selector(config: dict, variant: str) -> SelectorSettings:
    rrg, v = config["rrg"], _variant(config, variant)
    return SelectorSettings(region_feature_dim=rrg["region_feature_dim"], abnormal_classifier=rrg["abnormal_classifier"],
                            selection_pos_weight=v["selection_pos_weight"], abnormal_pos_weight=rrg["abnormal_pos_weight"],
                            selection_threshold=rrg["selection_threshold"], schedule=Schedule.from_params(v["selector"]))


def _generator(config: dict, variant: str) -> GeneratorSettings:
    rrg = config["rrg"]
    return GeneratorSettings(gpt2_source=model_source(rrg["generator_model"], "gpt2"),
                             freeze_gpt2=rrg["freeze_generator"], input_kind=rrg["generator_input"],
                             feature_dim=rrg["region_feature_dim"], hidden_dim=rrg["conditioning_dim"],
                             max_sentence_tokens=rrg["max_sentence_tokens"], amp=rrg["generator_amp"],
                             schedule=Schedule.from_params(_variant(config, variant)["generator"]))


def _generation(config: dict, variant: str) -> GenerationSettings:
    rrg = config["rrg"]
    return GenerationSettings(num_beams=rrg["num_beams"], max_new_tokens=_variant(config, variant)["max_new_tokens"],
                              batch_size=rrg["generation_batch_size"], similarity=rrg["dedup"]["similarity"],
                              threshold=rrg["dedup"]["threshold"], amp=rrg["generator_amp"])


_CLIP_KEYS = ("image_encoder", "image_size", "max_text_tokens", "projection_dim", "temperature_init",
              "image_to_image_loss_weight", "text_to_text_loss_weight", "loss_ratio", "batch_size", "lr",
              "weight_decay", "warmup_epochs", "normalize", "normalization", "unit", "augment", "amp", "channels_last")


def _clip_settings(config: dict, *, loss: str, image_weights: str | None, epochs: int) -> CLIPSettings:
    rclip = config["rclip"]
    # `enabled` and `epochs` of the convirt section choose what runs and for how long, not the objective
    convirt = ({k: v for k, v in config["convirt"].items() if k not in ("enabled", "epochs")}
               if loss == "convirt" else {})
    return CLIPSettings(**copy.deepcopy({k: rclip[k] for k in _CLIP_KEYS}), text_model=model_source(rclip["text_model"], "bert"),
                        image_weights=image_weights, epochs=epochs, loss=loss, convirt=copy.deepcopy(convirt))


def _clip(config: dict) -> CLIPSettings:
    rclip = config["rclip"]
    return _clip_settings(config, loss=rclip["loss"], image_weights=rclip["image_weights"], epochs=rclip["epochs"])




def _convirt(config: dict, init: str) -> CLIPSettings:
    """R-CLIP's settings with ConVIRT's objective (and ConVIRT's epochs when set); ImageNet init
    starts from rclip.image_weights, random init from nothing."""
    if init not in CONVIRT_INITS:
        raise ValueError(f"convirt init {init!r}: expected one of {CONVIRT_INITS}")
    rclip = config["rclip"]
    return _clip_settings(config, loss="convirt", image_weights=rclip["image_weights"] if init == "imagenet_init" else None,
                          epochs=config["convirt"]["epochs"] or rclip["epochs"])


def _probe(config: dict) -> ProbeSettings:
    probe, rclip = config["probe"], config["rclip"]
    values = {k: v for k, v in probe.items() if k != "num_workers"}
    return ProbeSettings(**copy.deepcopy(values), arch=rclip["image_encoder"], normalize=dict(rclip["normalize"]),
                         normalization=rclip["normalization"])


def _report_baseline(config: dict, baseline: str) -> ReportBaselineSettings:
    sections = config["baselines"]
    if baseline not in sections:
        raise ValueError(f"report baseline {baseline!r}: expected one of {sorted(sections)}")
    # enabled / subsample / generation_batch_size: what runs, on which data, how fast it generates
    values = {k: v for k, v in sections[baseline].items() if k not in ("enabled", "subsample", "generation_batch_size")}
    rrg = config["rrg"]
    return ReportBaselineSettings(**copy.deepcopy(values), model=baseline, backbone_weights=rrg["backbone_weights"],
                                  normalize=dict(rrg["normalize"]), augment=dict(rrg["augment"]))


def _backtranslation(config: dict) -> BacktranslationSettings:
    bt = dict(config["backtranslation"])
    bt["en_it_model"] = model_source(bt["en_it_model"], "marian_en_it")
    bt["it_en_model"] = model_source(bt["it_en_model"], "marian_it_en")
    return BacktranslationSettings(**bt)


# stage -> (builder, the wildcard values it needs)
_BUILDERS = {
    "detector": (_detector, ("variant",)),
    "selector": (_selector, ("variant",)),
    "generator": (_generator, ("variant",)),
    "generation": (_generation, ("variant",)),
    "clip": (_clip, ()),
    "convirt": (_convirt, ("init",)),
    "probe": (_probe, ()),
    "report_baseline": (_report_baseline, ("baseline",)),
    "backtranslation": (_backtranslation, ()),
}
STAGES = tuple(_BUILDERS)


def stage_settings(config: dict, stage: str, **keys):
    """The settings of ``stage`` from the validated ``config``; ``keys`` = the wildcards it needs
    (``variant`` for detector/selector/generator/generation, ``baseline`` for report_baseline,
    ``init`` for convirt)."""
    if stage not in _BUILDERS:
        raise ValueError(f"unknown stage {stage!r}: expected one of {STAGES}")
    build, needed = _BUILDERS[stage]
    if set(keys) != set(needed):
        raise TypeError(f"stage {stage!r} takes {list(needed) or 'no keys'}, got {sorted(keys)}")
    return build(config, **{k: str(v) for k, v in keys.items()})
