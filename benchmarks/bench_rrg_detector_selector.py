"""Speed and peak memory of RRG stages 1 and 2: detector training and prediction (region
feature extraction) and selector training, at demo size and at the paper's size.

The same script is the CPU and the GPU benchmark:

    .venv/bin/python benchmarks/bench_rrg_detector_selector.py --device cpu --iters 2
    .venv/bin/python benchmarks/bench_rrg_detector_selector.py --device cuda --amp bf16 --iters 20

Each (size, precision) runs in its own process so that peak memory is its own: CPU peak =
``resource.getrusage(RUSAGE_SELF).ru_maxrss`` of that process (includes the interpreter and
torch, ~0.3-0.5 GB), GPU peak = ``torch.cuda.max_memory_allocated``. With ``--amp bf16`` the
fp32 baseline is measured in the same run and the table gives the bf16 / fp32 speed ratio.
Writes ``benchmarks/results/rrg_detector_selector_<device>.md``. Inputs are random tensors
of the real shapes (29 regions, a few boxes per image), models have random weights.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

import torch

SIZES = {
    # demo: config/config.yaml; real: the schema defaults = the paper's protocol
    "demo": dict(backbone="resnet18", image_size=128, anchor_sizes=[8, 16, 24, 32, 48, 64, 96],
                 anchor_ratios=[0.25, 0.5, 1.0, 2.0, 4.0], roi_output_size=4, region_feature_dim=128),
    "real": dict(backbone="resnet50", image_size=512, anchor_sizes=[20, 40, 60, 80, 100, 120, 140, 160, 180, 300],
                 anchor_ratios=[0.2, 0.25, 0.33, 0.5, 0.75, 1.0, 1.33, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0, 4.5, 5.0, 8.0],
                 roi_output_size=8, region_feature_dim=1024),
}


def synthetic_batch(batch_size: int, size: int, generator: torch.Generator):
    from crrg_clip.regions import NUM_REGIONS

    images = torch.randn(batch_size, 1, size, size, generator=generator)
    targets = []
    for _ in range(batch_size):
        n = 12
        xy = torch.rand(n, 2, generator=generator) * size * 0.6
        wh = (0.1 + torch.rand(n, 2, generator=generator) * 0.3) * size
        labels = torch.randperm(NUM_REGIONS, generator=generator)[:n] + 1
        targets.append({"boxes": torch.cat([xy, (xy + wh).clamp(max=size)], dim=1), "labels": labels})
    return images, targets


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def timed(fn, iters: int, warmup: int, device) -> float:
    for _ in range(warmup):
        fn()
    sync(device)
    start = time.perf_counter()
    for _ in range(iters):
        fn()
    sync(device)
    return (time.perf_counter() - start) / iters


def child(size_name: str, device_name: str, amp: str, batch_size: int, iters: int, warmup: int, threads: int) -> dict:
    from crrg_clip.models.detector import DetectorConfig, RegionDetector
    from crrg_clip.models.selector import RegionSelector, SelectorConfig
    from crrg_clip.train.detector import DetectorTrainer
    from crrg_clip.train.loop import Schedule, autocast
    from crrg_clip.train.selector import SelectorData, SelectorTrainer

    if threads:
        torch.set_num_threads(threads)
    device = torch.device(device_name)
    torch.manual_seed(0)
    spec = dict(SIZES[size_name])
    feature_dim = spec.pop("region_feature_dim")
    config = DetectorConfig(**spec)
    model = RegionDetector(config)
    channels_last = amp.endswith("-cl")  # precision "bf16-cl": bf16 + channels-last
    amp_arg = None if amp.startswith("fp32") else amp.removesuffix("-cl")
    trainer = DetectorTrainer(model, None, None, Schedule(epochs=1, batch_size=batch_size, lr=1e-4),
                              device=device, seed=0, amp=amp_arg, progress=False, channels_last=channels_last)
    g = torch.Generator().manual_seed(0)
    images, targets = synthetic_batch(batch_size, config.image_size, g)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    model.train()
    train_s = timed(lambda: trainer.step((images, targets)), iters, warmup, device)
    train_peak = torch.cuda.max_memory_allocated() if device.type == "cuda" else None
    # the loop before this round read every loss with .item() after each step (a host sync)
    synced_s = timed(lambda: {k: v.item() for k, v in trainer.step((images, targets)).items()}, iters, 1, device)

    on_device = images.to(device)
    if channels_last:
        on_device = on_device.contiguous(memory_format=torch.channels_last)
    def predict():
        with autocast(device, amp_arg):
            model.predict(on_device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    predict_s = timed(predict, iters, warmup, device)
    predict_peak = torch.cuda.max_memory_allocated() if device.type == "cuda" else None

    # selector: one epoch over 512 images of region features (batch 16, as the variants)
    n, channels = 512, config.out_channels
    data = SelectorData([str(i) for i in range(n)], torch.randn(n, 29, channels).half(),
                        torch.rand(n, 29) > 0.1, torch.rand(n, 29) > 0.7, torch.rand(n, 29) > 0.9)
    selector = RegionSelector(SelectorConfig(in_channels=channels, region_feature_dim=feature_dim))
    sel = SelectorTrainer(selector, data, data, Schedule(epochs=1, batch_size=16, lr=1e-4), device=device, seed=0,
                          progress=False)
    selector_s = timed(lambda: sel.train_epoch(0), max(1, iters // 2), 1, device)

    return {
        "size": size_name, "amp": amp, "batch_size": batch_size, "iters": iters,
        "train_images_per_s": batch_size / train_s, "predict_images_per_s": batch_size / predict_s,
        "train_synced_images_per_s": batch_size / synced_s,
        "selector_images_per_s": n / selector_s,
        "peak_train_gib": None if train_peak is None else train_peak / 2**30,
        "peak_predict_gib": None if predict_peak is None else predict_peak / 2**30,
        "peak_rss_gib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20,
        "threads": torch.get_num_threads(),
    }


def describe(device_name: str) -> str:
    if device_name == "cuda":
        return torch.cuda.get_device_name(0)
    return f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores"


def fmt(x, spec=".2f"):
    return "-" if x is None else format(x, spec)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    parser.add_argument("--amp", choices=["none", "bf16"], default="none",
                        help="bf16 autocast (the fp32 baseline runs too, for the ratio)")
    parser.add_argument("--channels-last", action="store_true",
                        help="also the channels-last variant of the last precision (e.g. bf16-cl)")
    parser.add_argument("--sizes", default="demo,real")
    parser.add_argument("--iters", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--batch-demo", type=int, default=8)
    parser.add_argument("--batch-real", type=int, default=None, help="default 2 on CPU, 16 on CUDA (the paper's)")
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument("--out", default=None)
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.child:
        size, amp, batch = args.child.split(":")
        print("RESULT " + json.dumps(child(size, args.device, amp, int(batch), args.iters, args.warmup, args.threads)))
        return

    batch_real = args.batch_real or (16 if args.device == "cuda" else 2)
    precisions = ["fp32"] + (["bf16"] if args.amp == "bf16" else [])
    if args.channels_last:
        precisions.append(f"{precisions[-1]}-cl")
    rows = []
    load_before = os.getloadavg()
    for size in args.sizes.split(","):
        batch = args.batch_demo if size == "demo" else batch_real
        for amp in precisions:
            cmd = [sys.executable, __file__, "--device", args.device, "--iters", str(args.iters),
                   "--warmup", str(args.warmup), "--threads", str(args.threads), "--child", f"{size}:{amp}:{batch}"]
            proc = subprocess.run(cmd, capture_output=True, text=True)
            lines = [l for l in proc.stdout.splitlines() if l.startswith("RESULT ")]
            if proc.returncode != 0 or not lines:
                print(proc.stdout[-2000:], proc.stderr[-4000:], file=sys.stderr)
                rows.append({"size": size, "amp": amp, "batch_size": batch, "error": proc.stderr.strip().splitlines()[-1:]})
                continue
            row = json.loads(lines[-1][7:])
            rows.append(row)
            print(json.dumps(row), flush=True)

    base = {r["size"]: r for r in rows if r.get("amp") == "fp32" and "error" not in r}
    out = Path(args.out or Path(__file__).parent / "results" / f"rrg_detector_selector_{args.device}.md")
    out.parent.mkdir(parents=True, exist_ok=True)
    lines = [
        f"# RRG detector + selector benchmark ({args.device})",
        "",
        f"- device: {describe(args.device)}; torch {torch.__version__}; {time.strftime('%Y-%m-%d %H:%M')}",
        f"- command: `{' '.join([Path(sys.executable).name, *sys.argv])}`",
        f"- iterations {args.iters} after {args.warmup} warm-up; random weights and random tensors of the real shapes",
        f"- load average before the run: {', '.join(f'{x:.1f}' for x in load_before)} "
        "(CPU numbers on a shared machine are noisy; compare ratios within one run)",
        "- demo = resnet18 / 128 px / 7x5 anchors / RoI 4; real = resnet50 / 512 px / 10x16 anchors / RoI 8 (paper)",
        "- detector train = forward + backward + AdamW step; predict = `RegionDetector.predict` (extraction); "
        "selector = one epoch of 512 images of region features, batch 16",
        "",
        "- train img/s = `DetectorTrainer.step` as today (losses stay on the device); with .item() = the same "
        "step followed by reading every loss on the host, as the loop did before (one sync per step)",
        "- precision `-cl` = channels-last (`rrg.detector_channels_last`, CUDA only)",
        "",
        "| size | precision | batch | detector train img/s | train img/s with .item() | predict img/s | selector img/s | "
        "speed vs fp32 (train) | peak train GPU GiB | peak predict GPU GiB | peak RSS GiB |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        if "error" in r:
            lines.append(f"| {r['size']} | {r['amp']} | {r['batch_size']} | failed: {r['error']} | | | | | | | |")
            continue
        ratio = r["train_images_per_s"] / base[r["size"]]["train_images_per_s"] if r["size"] in base else None
        lines.append(f"| {r['size']} | {r['amp']} | {r['batch_size']} | {fmt(r['train_images_per_s'])} | "
                     f"{fmt(r['train_synced_images_per_s'])} | {fmt(r['predict_images_per_s'])} | {fmt(r['selector_images_per_s'], '.0f')} | {fmt(ratio)} | "
                     f"{fmt(r['peak_train_gib'])} | {fmt(r['peak_predict_gib'])} | {fmt(r['peak_rss_gib'])} |")
    out.write_text("\n".join(lines) + "\n")
    print(f"wrote {out}")
    if args.device == "cuda":  # refresh the projection's throughput table
        import throughputs

        device = f"cuda:{describe(args.device)}"
        source = f"benchmarks/results/{out.name}"
        for r in rows:
            if "error" in r:
                continue
            tag = f"{r['size']}_{r['amp'].replace('-', '_')}_b{r['batch_size']}"
            throughputs.record(f"detector_train_{tag}", r["train_images_per_s"], "images/s", device, source)
            throughputs.record(f"detector_predict_{tag}", r["predict_images_per_s"], "images/s", device, source)
            throughputs.record(f"selector_train_{r['size']}_{r['amp'].replace('-', '_')}_b16",
                               r["selector_images_per_s"], "images/s", device, source)


if __name__ == "__main__":
    main()
