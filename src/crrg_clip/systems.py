"""The one place that knows the names of Table 1's systems and Table 2's probe encoders.

A *system* (the ``{system}`` wildcard under ``results/metrics/rrg/``) writes test reports:

- ``<variant>``: a trained RRG variant (``rrg_base``, ``rrg_opt``), one run per training seed;
- ``<variant>-most_frequent``: the variant's most frequent training FINDINGS for every image;
- ``show_tell`` / ``adaatt``: the report baselines trained on our data (docs/BASELINES.md);
- ``external-<name>``: reports of ``evaluation.external_systems[name]``, scored by our code.

An *encoder* (the ``{encoder}`` wildcard under ``results/metrics/probe/``) is a frozen image
encoder under the RSNA probe: ``rclip_<text>``, ``random_init``, ``imagenet_init`` or
``convirt_<init>``. Untrained systems are evaluated once, under the first seed.

``Systems(config)`` answers every question the workflow, the tables and the probe code ask
about these names: which exist, their kind, seeds, subsamples, display names and files.
"""

from __future__ import annotations

from dataclasses import dataclass

MOST_FREQUENT = "-most_frequent"
EXTERNAL = "external-"
REPORT_BASELINES = ("show_tell", "adaatt")
TEXT_SOURCES = ("radiologist", "generated")
CONVIRT_INITS = ("random_init", "imagenet_init")
PROBE_ENCODERS = ("rclip_radiologist", "rclip_generated", "random_init", "imagenet_init",
                  "convirt_random_init", "convirt_imagenet_init")
# Table 1 metrics compared, paired, with the most-frequent baseline (rule compare_rrg)
RRG_COMPARED_METRICS = ("BLEU4", "METEOR", "ROUGEL", "CE_F1_mic5")

# display names: our names -> the paper's row names
RRG_NAMES = {"rrg_base": "RRG-base", "rrg_opt": "RRG-opt"}
BASELINE_NAMES = {"show_tell": "S&T (ours)", "adaatt": "AdaAtt (ours)"}
PROBE_ROWS = {
    "rclip_radiologist": ("R-CLIP-base", "radiologist reports"),
    "rclip_generated": ("R-CLIP-opt", "generated reports"),
    "random_init": ("ResNet-50", "Random Init (ours)"),
    "imagenet_init": ("ResNet-50", "ImageNet Init (ours)"),
    "convirt_random_init": ("ConVIRT (ours)", "Random Init"),
    "convirt_imagenet_init": ("ConVIRT (ours)", "ImageNet Init"),
}


@dataclass(frozen=True)
class Encoder:
    """A probe encoder's parts: ``family`` rclip / convirt / random_init / imagenet_init, and
    ``source``: the CLIP text source (rclip) or the initialisation (convirt), else None."""

    name: str
    family: str
    source: str | None = None

    @property
    def has_clip_folder(self) -> bool:
        return self.family in ("rclip", "convirt")


def parse_encoder(name: str) -> Encoder:
    """``rclip_generated`` -> Encoder(family="rclip", source="generated"); unknown names raise."""
    if name not in PROBE_ENCODERS:
        raise ValueError(f"unknown probe encoder {name!r}; expected one of {', '.join(PROBE_ENCODERS)}")
    for family in ("rclip", "convirt"):
        if name.startswith(f"{family}_"):
            return Encoder(name, family, name[len(family) + 1:])
    return Encoder(name, name)


def rrg_row_name(system: str) -> str:
    """Table 1's model cell of a system."""
    if system.endswith(MOST_FREQUENT):
        variant = system[: -len(MOST_FREQUENT)]
        return f"Most-frequent report ({RRG_NAMES.get(variant, variant)} split)"
    if system.startswith(EXTERNAL):
        return system[len(EXTERNAL):]
    return BASELINE_NAMES.get(system) or RRG_NAMES.get(system, system)


def clip_folder(encoder: str, seed) -> str | None:
    """The CLIP model folder an encoder's image tower comes from (None: no CLIP behind it)."""
    parsed = parse_encoder(encoder)
    if parsed.family == "rclip":
        return f"results/rclip/{parsed.source}/seed{seed}/clip"
    if parsed.family == "convirt":
        return f"results/rclip/convirt/{parsed.source}/seed{seed}/clip"
    return None


def rrg_dir(variant: str, seed) -> str:
    return f"results/rrg/{variant}/seed{seed}"


def rrg_model_dirs(variant: str, seed) -> list[str]:
    return [f"{rrg_dir(variant, seed)}/{part}" for part in ("detector", "selector", "generator")]


def rrg_metrics(system: str, seed) -> str:
    return f"results/metrics/rrg/{system}/seed{seed}.json"


def rrg_summary(system: str) -> str:
    return f"results/metrics/rrg/{system}/summary.json"


def probe_metrics(encoder: str, seed) -> str:
    return f"results/metrics/probe/{encoder}/seed{seed}.json"


def probe_summary(encoder: str) -> str:
    return f"results/metrics/probe/{encoder}/summary.json"


class Systems:
    """Every system and encoder one validated config asks for, with their files."""

    def __init__(self, config: dict):
        self.seeds = list(config["seeds"])
        self.variants = dict(config["rrg"]["variants"])
        evaluation = config["evaluation"]
        self.external = dict(evaluation["external_systems"])
        self.most_frequent = bool(evaluation["most_frequent_baseline"])
        self._external_subsample = evaluation["external_subsample"]
        self._test_subsample = evaluation["test_subsample"]
        self.baselines = [b for b in REPORT_BASELINES if config["baselines"][b]["enabled"]]
        self._baseline_subsamples = {b: config["baselines"][b]["subsample"] for b in self.baselines}
        self.imagenet = bool(config["rclip"]["image_weights"])
        self.convirt = ([f"convirt_{i}" for i in CONVIRT_INITS if i == "random_init" or self.imagenet]
                        if config["convirt"]["enabled"] else [])
        self.main_variant = "rrg_opt" if "rrg_opt" in self.variants else next(iter(self.variants))

    # --- report systems (Table 1) -------------------------------------------------------
    def rrg_systems(self) -> list[str]:
        """Table 1's reproduced and scored rows, in table order."""
        systems = list(self.variants)
        if self.most_frequent:
            systems += [f"{v}{MOST_FREQUENT}" for v in self.variants]
        return systems + self.baselines + [f"{EXTERNAL}{name}" for name in self.external]

    def kind(self, system: str) -> str:
        """``rrg`` (a trained variant), ``external`` or ``baseline`` (most-frequent, S&T, AdaAtt)."""
        if system in self.variants:
            return "rrg"
        return "external" if system.startswith(EXTERNAL) else "baseline"

    def system_seeds(self, system: str) -> list[int]:
        trained = self.kind(system) == "rrg" or system in self.baselines
        return self.seeds if trained else self.seeds[:1]

    def variant_subsample(self, variant: str) -> str:
        return self.variants[variant]["subsample"]

    def test_subsample(self) -> str:
        """The subsample whose test split every Table 1 row is scored on (one test set, one
        IDF / DF fit, so rows compare like for like and pair in the bootstrap)."""
        return self._test_subsample or self.variant_subsample(self.main_variant)

    def eval_subsample(self, system: str) -> str:
        """The split file a system is scored with: the common test subsample, except for an
        external system scored on ``evaluation.external_subsample``."""
        if self.kind(system) == "external":
            return self._external_subsample or self.variant_subsample(self.main_variant)
        return self.test_subsample()

    def training_subsample(self, system: str) -> str:
        """The subsample a system learnt from (Table 1's dataset cell)."""
        if self.kind(system) == "external":
            return self.eval_subsample(system)
        if system in self.baselines:
            return self.baseline_subsample(system)
        return self.variant_subsample(self.variant_of(system))

    def baseline_subsample(self, baseline: str) -> str:
        return self._baseline_subsamples.get(baseline) or self.variant_subsample(self.main_variant)

    def variant_of(self, system: str) -> str:
        """The RRG variant behind a variant or its most-frequent baseline."""
        return system[: -len(MOST_FREQUENT)] if system.endswith(MOST_FREQUENT) else system

    def reports(self, system: str, seed) -> str:
        """A system's test reports."""
        if self.kind(system) == "rrg":
            return f"{rrg_dir(system, seed)}/reports_test.parquet"
        if system in self.baselines:
            return f"results/rrg/baselines/{system}/seed{seed}/reports_test.parquet"
        if self.kind(system) == "baseline":
            return f"results/rrg/{self.variant_of(system)}/baselines/most_frequent/reports_test.parquet"
        return self.external[system[len(EXTERNAL):]]

    def predictions(self, system: str, seed) -> str | None:
        """A trained variant's per-region test predictions (None for other systems)."""
        return f"{rrg_dir(system, seed)}/predictions_test.parquet" if self.kind(system) == "rrg" else None

    def model_dirs(self, system: str, seed) -> list[str]:
        """The model folders behind a system's reports (for provenance)."""
        if system in self.baselines:
            return [f"results/rrg/baselines/{system}/seed{seed}/model"]
        return rrg_model_dirs(system, seed) if self.kind(system) == "rrg" else []

    def rrg_metrics_files(self, system: str) -> list[str]:
        return [rrg_metrics(system, s) for s in self.system_seeds(system)]

    def compared_systems(self) -> list[str]:
        """The reproduced systems compared, paired, with a most-frequent baseline."""
        return [*self.variants, *self.baselines] if self.most_frequent else []

    def comparison_reference(self, system: str) -> str:
        """Each variant is compared with its own training set's most-frequent report; S&T and
        AdaAtt (trained on their subsample) with the main variant's."""
        variant = system if system in self.variants else self.main_variant
        return f"{variant}{MOST_FREQUENT}"

    def rrg_comparison(self, system: str) -> str | None:
        if system not in self.compared_systems():
            return None
        return f"results/metrics/rrg/{system}/vs_most_frequent.json"

    # --- probe encoders (Table 2) -------------------------------------------------------
    def probe_encoders(self) -> list[str]:
        encoders = ["rclip_radiologist", "rclip_generated", "random_init"]
        if self.imagenet:
            encoders.append("imagenet_init")
        return encoders + self.convirt

    def probe_metrics_files(self, encoder: str) -> list[str]:
        return [probe_metrics(encoder, s) for s in self.seeds]

    @staticmethod
    def probe_comparison(encoder: str) -> str | None:
        """The paired AUC difference to the random-init probe (None for random_init itself)."""
        return None if encoder == "random_init" else f"results/metrics/probe/{encoder}/vs_random_init.json"
