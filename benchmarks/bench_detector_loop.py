"""Detector training loop on CPU: the old loop (``.item()`` after every step) vs today's
(losses summed on the device), and today's with DataLoader workers reading the memmap cache.

    .venv/bin/python benchmarks/bench_detector_loop.py [--images 32] [--repeats 3]

A small synthetic cache (64 px, 4 boxed regions per image, written to a temp dir and opened
as the workflow does, ``open_image_cache``), the test-size detector (ResNet-18, 3x3 anchors),
one epoch of batch 4 per measurement, the three variants alternating; the median wall time
of each. Every variant must end with the same epoch losses (checked). Writes
``benchmarks/results/detector_loop_cpu.json``. On a GPU the sync matters; on a CPU nothing
waits for a device, so the first ratio is expected near 1.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from crrg_clip.data.region_dataset import AugmentConfig, DetectorData, Normalize, RegionTargets, open_image_cache
from crrg_clip.models.detector import DetectorConfig, RegionDetector
from crrg_clip.regions import NUM_REGIONS
from crrg_clip.train.detector import DETECTOR_LOSS_WEIGHT, DetectorTrainer
from crrg_clip.train.loop import Schedule, epoch_batches

HERE = Path(__file__).resolve().parent
SIZE = 64


def synthetic_data(folder: Path, n: int) -> DetectorData:
    rng = np.random.default_rng(0)
    images = np.zeros((n, SIZE, SIZE), dtype=np.uint8)
    boxes = np.full((n, NUM_REGIONS, 4), np.nan, dtype=np.float32)
    for i in range(n):
        for r in range(4):
            x1, y1 = rng.integers(2, SIZE // 2, size=2)
            w, h = rng.integers(8, SIZE // 2 - 2, size=2)
            images[i, y1:y1 + h, x1:x1 + w] = 60 + 40 * r
            boxes[i, r] = [x1, y1, x1 + w, y1 + h]
    np.save(folder / "images.npy", images)
    ids = [f"d{i}" for i in range(n)]
    targets = RegionTargets(ids, boxes, np.zeros((n, NUM_REGIONS), bool), np.zeros((n, NUM_REGIONS), bool))
    return DetectorData(open_image_cache(folder / "images.npy"), np.arange(n), targets, normalize=Normalize(),
                        augment_cfg=AugmentConfig(), seed=0, require_boxes=True)


def make_trainer(data, **knobs) -> DetectorTrainer:
    torch.manual_seed(0)
    config = DetectorConfig(backbone="resnet18", image_size=SIZE, anchor_sizes=[8, 16, 32],
                            anchor_ratios=[0.5, 1.0, 2.0], roi_output_size=2)
    return DetectorTrainer(RegionDetector(config), data, data, Schedule(epochs=1, batch_size=4, lr=1e-3),
                           device=torch.device("cpu"), seed=0, progress=False, **knobs)


def old_epoch(t: DetectorTrainer, epoch: int) -> dict[str, float]:
    """The loop before this round: Python floats from ``.item()`` after every step."""
    t.model.train()
    sums: dict[str, float] = {}
    for batch in epoch_batches(len(t.train), t.schedule.batch_size, seed=t.seed, epoch=epoch):
        images, targets = t._to_device(*t.train.batch(batch, epoch))
        losses = t.model(images, targets)
        loss = DETECTOR_LOSS_WEIGHT * sum(losses.values())
        if not torch.isfinite(loss):
            raise FloatingPointError("non-finite loss")
        t.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        t.optimizer.step()
        for k, v in {"loss": loss.item(), **{k: v.item() for k, v in losses.items()}}.items():
            sums[k] = sums.get(k, 0.0) + v * len(batch)
    return {k: v / len(t.train) for k, v in sums.items()}


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--out", default=str(HERE / "results" / "detector_loop_cpu.json"))
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    load = [round(x, 1) for x in os.getloadavg()]
    with tempfile.TemporaryDirectory() as tmp:
        data = synthetic_data(Path(tmp), args.images)
        variants = {
            "old loop (.item() per step)": (lambda t, e: old_epoch(t, e), {}),
            "device sums, in-process batches": (lambda t, e: t.train_epoch(e), {}),
            f"device sums, {args.workers} loader workers": (lambda t, e: t.train_epoch(e),
                                                             {"num_workers": args.workers}),
        }
        seconds = {name: [] for name in variants}
        cpu = {name: [] for name in variants}  # this process only: workers' CPU is not in it
        losses = {}
        for _ in range(args.repeats):
            for name, (run, knobs) in variants.items():
                trainer = make_trainer(data, **knobs)
                start, start_cpu = time.perf_counter(), time.process_time()
                losses[name] = run(trainer, 0)
                seconds[name].append(time.perf_counter() - start)
                cpu[name].append(time.process_time() - start_cpu)
    first = next(iter(variants))
    base = statistics.median(seconds[first])
    rows = [{"variant": name, "median_seconds": round(statistics.median(s), 2),
             "images_per_s": round(args.images / statistics.median(s), 2),
             "speed_vs_old": round(base / statistics.median(s), 3), "seconds": [round(x, 2) for x in s],
             "main_process_cpu_seconds": round(statistics.median(cpu[name]), 2),
             "cpu_speed_vs_old": round(statistics.median(cpu[first]) / statistics.median(cpu[name]), 3)}
            for name, s in seconds.items()]
    identical = len({json.dumps(v, sort_keys=True) for v in losses.values()}) == 1
    result = {"device": f"cpu ({os.cpu_count()} cores, 1 torch thread, shared)", "images": args.images,
              "batch_size": 4, "image_side": SIZE, "repeats": args.repeats, "rows": rows,
              "identical_epoch_losses": identical, "load_average_before": load,
              "command": " ".join([Path(sys.executable).name, *sys.argv]), "date": time.strftime("%Y-%m-%d %H:%M"),
              "note": "median of repeats, variants alternating; the machine is shared: compare ratios. "
                      "cpu_speed_vs_old: this process's CPU time (with workers, the batches' CPU moves to them)"}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=1) + "\n")
    for r in rows:
        print(r)
    print(f"identical epoch losses: {identical}; wrote {args.out}")
    return result


if __name__ == "__main__":
    main()
