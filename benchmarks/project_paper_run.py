"""Projected wall time of the paper.yaml run on one GPU, from measured throughputs.

    .venv/bin/python benchmarks/project_paper_run.py [--config config/paper.yaml] [--gpu "NVIDIA H200"]

Reads the throughput table (``benchmarks/results/throughputs.json``, see throughputs.py) and
the sizes of the config (subsamples, epochs, batch sizes, beams, generation batch, RSNA
rows), and writes ``benchmarks/results/paper_run_projection.{md,json}``: minutes per rule
(each job = sum over its work terms of items / throughput) and in total. GPU rules hold
``gpu=1`` and so run one at a time; CPU rules are counted serially too (an upper bound: in
the real run a few overlap with the GPU chain). ``verified`` is true only when every
throughput used was measured (not an estimate), is not marked stale (taken before a code
change of its path), and was measured on the named GPU (CPU stages: on that GPU's host).

What the table does not know is an explicit assumption (ASSUMPTIONS below, printed in both
outputs): sentences per image, tokens per generated sentence, parallel efficiency, etc.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import throughputs as throughput_table  # noqa: E402

RESULTS = HERE / "results"

ASSUMPTIONS = {
    "sentence_regions_per_image": 8.0,  # regions with a reference sentence (generator training)
    "selected_regions_per_image": 9.3,  # regions selected at inference (issue 15: ~100k sentences / ~10.7k images)
    "generated_tokens_per_sentence": 20,  # the generation benchmark's fixed length; a batch runs to its longest
    "forward_only_speedup": 3.0,  # validation / frozen-encoder passes vs a training step (no backward, no optimiser)
    "images_per_study": 1.66,  # MIMIC-CXR: 377k images / 227k studies; the MIMIC cache holds every view of a study
    "cpu_parallel_efficiency": 0.6,  # 2 workers gave 1.21x in bench_scene_graphs.py
    "scene_graph_files": 243_310,
    "rsna_images": 26_684,
    "cpu_cores": 16,
    "probe_encoders": 4,  # rclip_radiologist, rclip_generated, random_init, imagenet_init
    "text_sources": 2,  # radiologist, generated
    "baseline_systems_per_variant": 1,  # most_frequent
}


@dataclass
class Term:
    items: float
    throughput: str
    speedup: float = 1.0  # items / (rate * speedup)
    what: str = ""


@dataclass
class Job:
    rule: str
    terms: list[Term] = field(default_factory=list)
    gpu: bool = True


def _counts(subsample: dict, name: str) -> dict[str, int]:
    counts = {s: subsample.get(s) for s in ("train", "valid", "test")}
    if not all(isinstance(v, int) and not isinstance(v, bool) for v in counts.values()):
        raise ValueError(f"subsample {name!r}: the projection needs image counts, not fractions ({counts})")
    return counts


def _batch_tag(n: float) -> str:
    """The benchmarked batch nearest below: b64 from 64 sentences on, else b8."""
    return "b64" if n >= 64 else "b8"


def _precision(amp: str | None) -> str:
    return "bf16" if amp == "bf16" else "fp32"


def plan(config: dict, a: dict = ASSUMPTIONS) -> list[Job]:
    """The jobs of a config's run, each with its work in items of a named throughput."""
    rrg, rclip, probe, rsna = config["rrg"], config["rclip"], config["probe"], config["rsna"]
    seeds = len(config.get("seeds", [0]))
    cores = a["cpu_cores"] * a["cpu_parallel_efficiency"]
    fwd = a["forward_only_speedup"]
    subsamples = {name: _counts(s, name) for name, s in config["subsamples"].items()
                  if name in {v["subsample"] for v in rrg["variants"].values()} | {rclip["subsample"]}}
    jobs: list[Job] = []

    # data preparation (CPU)
    shards = int(config["qc"]["scene_graph_shards"])
    jobs.append(Job("parse_scene_graphs", [Term(a["scene_graph_files"], "scene_graph_parse_per_core",
                                                min(shards, a["cpu_cores"]) * a["cpu_parallel_efficiency"],
                                                "files")], gpu=False))
    cached = sum(sum(c.values()) for name, c in subsamples.items() if name != rclip["subsample"]
                 or rclip["subsample"] in {v["subsample"] for v in rrg["variants"].values()})
    jobs.append(Job("cache_mimic", [Term(cached * a["images_per_study"], "jpeg_decode_letterbox_512_per_core",
                                         cores, "images (every view of the subsampled studies)")], gpu=False))
    caps = rsna.get("max_rows") or {}
    rsna_rows = a["rsna_images"]
    if all(caps.get(s) is not None for s in ("train", "valid", "test")):
        rsna_rows = sum(caps[s] for s in ("train", "valid", "test"))
    jobs.append(Job("cache_rsna", [Term(rsna_rows, "dicom_decode_letterbox_256_per_core", cores, "DICOMs")],
                    gpu=False))

    det_p = _precision(rrg.get("detector_amp")) + ("_cl" if rrg.get("detector_channels_last") else "")
    gen_p = _precision(rrg.get("generator_amp"))
    for variant, v in rrg["variants"].items():
        n = subsamples[v["subsample"]]
        d, s, g = v["detector"], v["selector"], v["generator"]
        jobs.append(Job(f"train_detector[{variant}]", [
            Term(d["epochs"] * n["train"], f"detector_train_real_{det_p}_b16", 1, "training images x epochs"),
            Term(d["epochs"] * n["valid"], f"detector_predict_real_{det_p}_b16", 1, "validation images x epochs"),
        ]))
        splits = {(v["subsample"], sp) for sp in n}
        if variant == rrg["report_images"]["variant"]:
            splits |= {(rclip["subsample"], sp) for sp in ("train", "valid")}
        extract = sum(subsamples[sub][sp] for sub, sp in splits)
        jobs.append(Job(f"extract_region_features[{variant}]", [
            Term(extract, "detector_predict_real_fp32_b16", 1, f"images of {len(splits)} splits")]))
        jobs.append(Job(f"train_selector[{variant}]", [
            Term(s["epochs"] * (n["train"] + n["valid"]), "selector_train_real_fp32_b16", 1, "images x epochs")]))
        per_batch = g["batch_size"] * a["sentence_regions_per_image"]
        gen_train = f"generator_train_medium_{gen_p}_{_batch_tag(per_batch)}"
        sentences = a["sentence_regions_per_image"]
        jobs.append(Job(f"train_generator[{variant}]", [
            Term(g["epochs"] * n["train"] * sentences, gen_train, 1, "training sentences x epochs"),
            Term(g["epochs"] * n["valid"] * sentences, gen_train, fwd, "validation sentences x epochs"),
        ]))
        generation = f"generation_medium_{gen_p}_{_batch_tag(rrg['generation_batch_size'])}"
        tokens = a["generated_tokens_per_sentence"] / 20  # the benchmark generated 20 tokens per sentence
        selected = a["selected_regions_per_image"]
        jobs.append(Job(f"generate_reports[{variant}]", [
            Term(n["test"] * selected * tokens, generation, 1, "test sentences")]))
        if variant == rrg["report_images"]["variant"]:
            rc = subsamples[rclip["subsample"]]
            for split in ("train", "valid"):
                jobs.append(Job(f"generate_reports_for[{variant},{rclip['subsample']}_{split}]", [
                    Term(rc[split] * selected * tokens, generation, 1, f"{split} sentences")]))
    jobs = [Job(j.rule if seeds == 1 else f"{j.rule} x{seeds} seeds",
                [Term(t.items * (seeds if j.gpu else 1), t.throughput, t.speedup, t.what) for t in j.terms], j.gpu)
            for j in jobs]

    rc = subsamples[rclip["subsample"]]
    clip_p = _precision(rclip.get("amp")) + ("_cl" if rclip.get("channels_last") else "")
    for text in range(a["text_sources"]):
        name = ("radiologist", "generated")[text] if a["text_sources"] == 2 else str(text)
        jobs.append(Job(f"back_translate[{name}]", [
            Term(rc["train"] + rc["valid"], "backtranslation_marian_base_report_b128", 1, "texts")]))
        jobs.append(Job(f"train_clip[{name}] x{seeds} seeds" if seeds > 1 else f"train_clip[{name}]", [
            Term(seeds * rclip["epochs"] * rc["train"], f"clip_train_real_{clip_p}_b32", 1, "images x epochs"),
            Term(seeds * rclip["epochs"] * rc["valid"], f"clip_train_real_{clip_p}_b32", fwd,
                 "validation images x epochs")]))
    probe_train = round(rsna.get("train_subset", 0.01) * (caps.get("train") or 0.7 * a["rsna_images"]))
    probe_eval = (caps.get("valid") or 0.15 * a["rsna_images"]) * probe["epochs"] + (
        caps.get("test") or 0.15 * a["rsna_images"])
    tower = f"clip_image_tower_real_{_precision(probe.get('amp'))}_b32"
    jobs.append(Job(f"train_probe x{a['probe_encoders']} encoders x{seeds} seeds", [
        Term(seeds * a["probe_encoders"] * probe["epochs"] * probe_train, tower, fwd, "training images x epochs"),
        Term(seeds * a["probe_encoders"] * probe_eval, tower, fwd, "valid x epochs + test images")]))
    systems = len(rrg["variants"]) * (1 + a["baseline_systems_per_variant"])
    test_reports = sum(subsamples[v["subsample"]]["test"] for v in rrg["variants"].values())
    jobs.append(Job("evaluate_rrg (variants + baselines)", [
        Term(test_reports * (1 + a["baseline_systems_per_variant"]) * seeds, "evaluate_rrg_reports_per_s", 1,
             f"reports of {systems} systems")], gpu=False))
    return jobs


def is_verified(entry: dict, gpu: str) -> tuple[bool, str]:
    """Whether one throughput counts as measured on ``gpu`` with today's code, and why not."""
    if entry.get("estimate"):
        return False, "estimate (never measured)"
    if entry.get("stale"):
        return False, f"stale: {entry['stale']}"
    if gpu not in entry["device"]:
        return False, f"measured on {entry['device']}, not {gpu}"
    return True, ""


def project(jobs: list[Job], table: dict[str, dict], gpu: str) -> dict:
    """Minutes per rule and in total; which throughputs were used and whether all are verified."""
    per_rule: dict[str, float] = {}
    used: dict[str, dict] = {}
    for job in jobs:
        seconds = 0.0
        for term in job.terms:
            if term.throughput not in table:
                raise KeyError(f"{job.rule}: no throughput {term.throughput!r} in the table")
            entry = table[term.throughput]
            seconds += term.items / (float(entry["value"]) * term.speedup)
            ok, why = is_verified(entry, gpu)
            used[term.throughput] = {**entry, "verified": ok, **({"why_not": why} if why else {})}
        per_rule[job.rule] = seconds / 60
    gpu_minutes = sum(per_rule[j.rule] for j in jobs if j.gpu)
    dates = sorted({u["measured_on"] for u in used.values() if u["measured_on"] != "never"})
    devices = sorted({u["device"] for u in used.values()})
    return {
        "total_minutes": round(sum(per_rule.values()), 2),
        "gpu_rules_minutes": round(gpu_minutes, 2),
        "cpu_rules_minutes": round(sum(per_rule.values()) - gpu_minutes, 2),
        "per_rule_minutes": {k: round(v, 3) for k, v in per_rule.items()},
        "measured_on": {"gpu": gpu, "devices": devices, "dates": dates},
        "verified": all(u["verified"] for u in used.values()),
        "throughputs_used": used,
    }


def render(result: dict, jobs: list[Job], config_path: str, assumptions: dict) -> str:
    lines = [
        "# Projected wall time of the paper.yaml run on one GPU",
        "",
        f"- command: `python benchmarks/project_paper_run.py --config {config_path}`; {time.strftime('%Y-%m-%d %H:%M')}",
        f"- target GPU: {result['measured_on']['gpu']}; throughputs from `benchmarks/results/throughputs.json`",
        f"- **total {result['total_minutes']:.1f} min** (GPU rules {result['gpu_rules_minutes']:.1f}, "
        f"CPU rules {result['cpu_rules_minutes']:.1f}, counted serially); "
        f"**verified: {str(result['verified']).lower()}**",
        "",
        "| rule | GPU | minutes | work |",
        "|---|---|---|---|",
    ]
    for job in sorted(jobs, key=lambda j: -result["per_rule_minutes"][j.rule]):
        work = "; ".join(f"{t.items:,.0f} {t.what} @ {t.throughput}" + (f" x{t.speedup:g}" if t.speedup != 1 else "")
                         for t in job.terms)
        lines.append(f"| {job.rule} | {'yes' if job.gpu else 'no'} | {result['per_rule_minutes'][job.rule]:.2f} | {work} |")
    lines += ["", "## Throughputs used", "", "| name | value | unit | device | measured on | verified | why not |",
              "|---|---|---|---|---|---|---|"]
    for name, u in sorted(result["throughputs_used"].items()):
        lines.append(f"| {name} | {u['value']:g} | {u['unit']} | {u['device']} | {u['measured_on']} | "
                     f"{'yes' if u['verified'] else 'no'} | {u.get('why_not', '')} |")
    lines += ["", "## Assumptions", ""] + [f"- `{k}`: {v}" for k, v in assumptions.items()]
    lines += ["", "A term is items / (throughput x factor); factor = forward-only speed-up for validation and "
              "frozen-encoder passes, or cores x efficiency for CPU stages. Rerun after `benchmarks/gpu.sh`."]
    return "\n".join(lines) + "\n"


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="config/paper.yaml")
    parser.add_argument("--throughputs", default=str(throughput_table.TABLE))
    parser.add_argument("--gpu", default="NVIDIA H200", help="the device every throughput must come from")
    parser.add_argument("--out", default=str(RESULTS / "paper_run_projection"), help="path without .md/.json")
    args = parser.parse_args(argv)
    from crrg_clip.config import load_config

    config = load_config(args.config)
    jobs = plan(config)
    result = project(jobs, throughput_table.load(args.throughputs), args.gpu)
    result["assumptions"] = ASSUMPTIONS
    result["config"] = args.config
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(result, indent=1) + "\n")
    out.with_suffix(".md").write_text(render(result, jobs, args.config, ASSUMPTIONS))
    print(f"total {result['total_minutes']:.1f} min, verified {result['verified']}; wrote {out}.{{md,json}}")
    return result


if __name__ == "__main__":
    main()
