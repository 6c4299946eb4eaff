"""Generation sentences/s: one ``generate`` call per image (old) vs all selected regions of
many images in one call of ``rrg.generation_batch_size`` (``generate_for_pairs``), same run.

    .venv/bin/python benchmarks/bench_generation_batched.py --device cpu
    .venv/bin/python benchmarks/bench_generation_batched.py --device cuda --regions 512 --tokens 20

Random-weight generators of the demo size and of the paper's size (GPT-2 medium, 24 x 1024,
frozen) with the paper's 4 beams; each fake image has 6-11 selected regions (mean ~8.5, as
MIMIC). Both paths run on the same region features, alternately, ``--repeats`` times; the
median rate of each is reported, and the sentences of both paths are compared (they must be
equal: ``identical``). Writes ``benchmarks/results/generation_batched.json`` (``--out``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from bench_rrg_generator import SIZES, make_generator, sync  # noqa: E402

from crrg_clip.generate import generate_for_pairs  # noqa: E402

CASES = {"demo": "demo", "paper": "gpt2-medium"}


def regions_per_image(n_regions: int, seed: int = 0) -> list[int]:
    """Image sizes (6-11 selected regions each) that add up to ``n_regions``."""
    g = torch.Generator().manual_seed(seed)
    counts, left = [], n_regions
    while left > 0:
        counts.append(min(left, int(torch.randint(6, 12, (1,), generator=g))))
        left -= counts[-1]
    return counts


def per_image(generator, features, counts, *, num_beams, max_new_tokens, device) -> list[str]:
    """The old path: one generate call per image with that image's selected regions."""
    sentences, start = [], 0
    for n in counts:
        sentences += generate_for_pairs(generator, features[start:start + n], num_beams=num_beams,
                                        max_new_tokens=max_new_tokens, batch_size=n, device=device,
                                        progress=False)
        start += n
    return sentences


def batched(generator, features, *, batch_size, num_beams, max_new_tokens, device) -> list[str]:
    return generate_for_pairs(generator, features, num_beams=num_beams, max_new_tokens=max_new_tokens,
                              batch_size=batch_size, device=device, progress=False)


def timed(fn, device) -> tuple[float, float, list[str]]:
    """(wall seconds, this process's CPU seconds, result). On a shared CPU the CPU time is the
    steadier measure of work (one torch thread: CPU time ~ compute, not waiting for a core)."""
    sync(device)
    wall, cpu = time.perf_counter(), time.process_time()
    out = fn()
    sync(device)
    return time.perf_counter() - wall, time.process_time() - cpu, out


def run_case(name: str, args, device) -> dict:
    size = SIZES[CASES[name]]
    torch.manual_seed(0)
    generator = make_generator(size, device).eval()
    if name == "demo":  # a random tiny GPT-2 is nearly uniform; scale it so sentences differ
        with torch.no_grad():
            for p in generator.parameters():
                p.mul_(3.0)
    n = args.regions if name == "paper" else args.demo_regions
    features = torch.randn(n, size["feature_dim"], generator=torch.Generator().manual_seed(1))
    counts = regions_per_image(n)
    kw = dict(num_beams=args.beams, max_new_tokens=args.tokens if name == "paper" else args.demo_tokens,
              device=device)
    old_fn = lambda: per_image(generator, features, counts, **kw)  # noqa: E731
    new_fn = lambda: batched(generator, features, batch_size=args.batch, **kw)  # noqa: E731
    batched(generator, features[:8], batch_size=8, **kw)  # warm-up (CUDA context, kernels, allocator)
    old_s, new_s, old_cpu, new_cpu, identical = [], [], [], [], True
    for _ in range(args.repeats):
        t, c, old = timed(old_fn, device)
        old_s.append(t)
        old_cpu.append(c)
        t, c, new = timed(new_fn, device)
        new_s.append(t)
        new_cpu.append(c)
        identical &= old == new
    # CUDA: wall time (the host waits for the device); CPU: process CPU time (load-independent)
    old_t, new_t = (old_s, new_s) if device.type == "cuda" else (old_cpu, new_cpu)
    old_rate, new_rate = n / statistics.median(old_t), n / statistics.median(new_t)
    row = {"case": name, "gpt2": CASES[name], "regions": n, "images": len(counts),
           "old_batch_sizes": sorted(set(counts)), "new_batch_size": args.batch, "beams": args.beams,
           "max_new_tokens": kw["max_new_tokens"], "repeats": args.repeats,
           "old_sentences_per_s": round(old_rate, 3), "new_sentences_per_s": round(new_rate, 3),
           "ratio": round(new_rate / old_rate, 3),
           "wall_ratio": round(statistics.median(old_s) / statistics.median(new_s), 3),
           "rate_from": "wall time" if device.type == "cuda" else "process CPU time (1 thread)",
           "identical": identical,
           "old_seconds": [round(s, 2) for s in old_s], "new_seconds": [round(s, 2) for s in new_s],
           "old_cpu_seconds": [round(s, 2) for s in old_cpu], "new_cpu_seconds": [round(s, 2) for s in new_cpu]}
    print(json.dumps(row), flush=True)
    return row


def describe(device) -> str:
    if device.type == "cuda":
        return f"cuda:{torch.cuda.get_device_name(0)}"
    return f"cpu ({platform.machine()}, {os.cpu_count()} cores, {torch.get_num_threads()} torch threads)"


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    parser.add_argument("--cases", default="demo,paper")
    parser.add_argument("--regions", type=int, default=32, help="paper-size case: selected regions in all")
    parser.add_argument("--tokens", type=int, default=6, help="paper-size case: max new tokens")
    parser.add_argument("--demo-regions", type=int, default=128)
    parser.add_argument("--demo-tokens", type=int, default=12)
    parser.add_argument("--beams", type=int, default=4)
    parser.add_argument("--batch", type=int, default=64, help="the new path's batch (rrg.generation_batch_size)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (default: 1 on CPU, see timed())")
    parser.add_argument("--out", default=str(HERE / "results" / "generation_batched.json"))
    args = parser.parse_args(argv)
    if args.threads or args.device == "cpu":
        torch.set_num_threads(args.threads or 1)
    device = torch.device(args.device)
    load = os.getloadavg()
    rows = [run_case(name, args, device) for name in args.cases.split(",")]
    headline = rows[-1]
    result = {
        "ratio": headline["ratio"], "ratio_case": headline["case"], "device": describe(device),
        "beams": args.beams, "batch_sizes": {"old": "one image's selected regions (6-11)", "new": args.batch},
        "sentences_per_s": {r["case"]: {"old": r["old_sentences_per_s"], "new": r["new_sentences_per_s"]}
                            for r in rows},
        "identical": all(r["identical"] for r in rows), "cases": rows,
        "command": " ".join([Path(sys.executable).name, *sys.argv]), "date": time.strftime("%Y-%m-%d %H:%M"),
        "load_average_before": [round(x, 1) for x in load], "torch": torch.__version__,
        "note": "median of repeats, both paths alternately in one process; on CPU the rates are from process CPU "
                "time with 1 torch thread (the machine is shared), wall-time ratios beside them",
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1) + "\n")
    if args.device == "cuda":
        import throughputs

        for r in rows:
            if r["case"] == "paper":
                tag = f"medium_fp32_b{args.batch}"
                throughputs.record(f"generation_{tag}", r["new_sentences_per_s"], "sentences/s", describe(device),
                                   f"benchmarks/results/{out.name}",
                                   note=f"{args.beams} beams, {r['max_new_tokens']} new tokens, generate_for_pairs")
    print(f"ratio {result['ratio']} ({headline['case']}), identical {result['identical']}; wrote {out}")
    return result


if __name__ == "__main__":
    main()
