"""The data path at full scale: scene-graph parsing and the image cache, time / disk / peak RSS.

    .venv/bin/python benchmarks/bench_data_scale.py [--files 1000,4000,12000] [--images 2000,10000]

1. Scene graphs: one template from the project's synthetic writer
   (``crrg_clip.data.synthetic.scene_graphs.scene_graph``, padded with 40 relationships to the
   real files' ~47 KiB), written N times into a temp dir with only the ids changed; each N is
   parsed by ``parse_scene_graph_files`` in a fresh process (peak RSS = that process's
   ``ru_maxrss``; traced Python heap peak with tracemalloc). Memory per file is the slope
   between sizes, compared with the size of the rows it returns; 243,310 files are projected.
2. Image cache: N small synthetic greyscale JPGs -> ``build_cache`` at 512 px (the paper's
   ``image_cache.mimic_size``) with 2 workers; then the reader (``open_image_cache``) walks every
   row; anonymous RSS (``RssAnon``, not the file pages of the memmap, which the kernel can
   drop) before and after shows it never holds the cache. Projected to 243k images.
Writes ``benchmarks/results/data_scale.{md,json}``. Temp files are deleted.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
REAL_FILES = 243_310
REAL_IMAGES = 243_324  # MIMIC-CXR-JPG frontal + lateral images with a scene graph (~ the same count)
PLACEHOLDER = "00000000-11111111-22222222-33333333-44444444"


def template() -> str:
    """A scene graph of realistic size as JSON text, its dicom id = PLACEHOLDER."""
    from crrg_clip.data.synthetic.anatomy import sample_anatomy
    from crrg_clip.data.synthetic.findings import Sentence
    from crrg_clip.data.synthetic.scene_graphs import scene_graph
    from crrg_clip.regions import REGIONS

    rng = np.random.default_rng(0)
    anatomy = sample_anatomy(rng, 3056, 2544)
    sentences = [Sentence(f"There is a {3 + i} mm opacity in the {r} which is unchanged from the prior study.",
                          (r,), ("anatomicalfinding|yes|lung opacity", "nlp|yes|abnormal"), True, severity="mild")
                 for i, r in enumerate(REGIONS[:14])]
    graph = scene_graph(dicom_id=PLACEHOLDER, subject_id=10000032, study_id=50414267, view="PA", gender="F",
                        age_decile="60-70", reason_for_exam="___ with cough, evaluate for pneumonia", study_order=2,
                        study_datetime="2180-05-06 09:12:00", boxes=anatomy.boxes, height=3056, width=2544,
                        sentences=sentences, phrases=tuple(s.text for s in sentences))
    graph["relationships"] = [  # real files carry ~40 comparison relationships the parser skips
        {"relationship_id": f"{PLACEHOLDER}|{k}", "predicate": "['No change']", "synsets": ["C0442739"],
         "relationship_names": ["comparison|yes|no change"], "relationship_contexts": [1.0],
         "phrase": "Unchanged appearance of the right lower lobe opacity compared to the prior.",
         "attributes": ["anatomicalfinding|yes|lung opacity"], "bbox_name": REGIONS[k % 29],
         "subject_id": f"{PLACEHOLDER}_{REGIONS[k % 29]}", "object_id": f"prior_{REGIONS[k % 29]}"}
        for k in range(40)]
    return json.dumps(graph)


def write_scene_graphs(folder: Path, n: int) -> float:
    """n files ``{id}_SceneGraph.json`` (ids vary, content otherwise the template); mean KiB."""
    text = template()
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        dicom = f"{i:08x}-{i * 7 % 2**32:08x}-22222222-33333333-44444444"
        (folder / f"{dicom}_SceneGraph.json").write_text(text.replace(PLACEHOLDER, dicom))
    return len(text) / 1024


def anon_rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("RssAnon:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def parse_child(folder: str, n: int) -> dict:
    """Runs in a fresh process: parse the first n files, report time and memory."""
    from crrg_clip.data.scene_graphs import parse_scene_graph_files

    files = sorted(Path(folder).glob("*_SceneGraph.json"))[:n]
    base_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    tracemalloc.start()
    start, cpu = time.perf_counter(), time.process_time()
    frame, log = parse_scene_graph_files(files, {}, workers=1)
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    _, traced_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return {"files": n, "rows": len(frame), "seconds": round(seconds, 2), "files_per_s": round(n / seconds, 1),
            "cpu_seconds": round(cpu, 2), "files_per_cpu_s": round(n / cpu, 1),
            "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
            "rss_before_parse_mib": round(base_rss, 1), "traced_peak_mib": round(traced_peak / 2**20, 1),
            "output_mib": round(frame.memory_usage(deep=True).sum() / 2**20, 1), "exclusions": len(log.rows)}


def slope(rows: list[dict], key: str) -> float:
    """Least-squares MiB per file of ``key`` over the sizes measured."""
    x = np.array([r["files"] for r in rows], dtype=float)
    y = np.array([r[key] for r in rows], dtype=float)
    return float(np.polyfit(x, y, 1)[0]) if len(rows) > 1 else float("nan")


def bench_scene_graphs(tmp: Path, sizes: list[int]) -> dict:
    folder = tmp / "scene_graph"
    start = time.perf_counter()
    kib = write_scene_graphs(folder, max(sizes))
    write_s = time.perf_counter() - start
    rows = []
    for n in sizes:
        proc = subprocess.run([sys.executable, __file__, "--parse-child", f"{folder}:{n}"], capture_output=True,
                              text=True, check=True)
        rows.append(json.loads(proc.stdout.strip().splitlines()[-1]))
        print(json.dumps(rows[-1]), flush=True)
    shutil.rmtree(folder)
    per_file = {k: slope(rows, k) for k in ("peak_rss_mib", "traced_peak_mib", "output_mib")}
    rate = float(np.median([r["files_per_cpu_s"] for r in rows]))  # per CPU-second: the machine is shared
    shard = REAL_FILES / 32
    base = rows[0]["peak_rss_mib"] - per_file["peak_rss_mib"] * rows[0]["files"]
    return {"file_kib": round(kib, 1), "write_seconds": round(write_s, 1), "rows": rows,
            "mib_per_1000_files": {k: round(v * 1000, 2) for k, v in per_file.items()},
            "files_per_s_one_core": rate,
            "projection_243k": {
                "one_process_minutes": round(REAL_FILES / rate / 60, 1),
                "one_process_peak_rss_gib": round((base + per_file["peak_rss_mib"] * REAL_FILES) / 1024, 2),
                "per_shard_files": round(shard), "per_shard_peak_rss_mib": round(base + per_file["peak_rss_mib"] * shard),
                "regions_rows": REAL_FILES * 29,
                "regions_frame_gib": round(per_file["output_mib"] * REAL_FILES / 1024, 2)}}


def write_jpegs(folder: Path, n: int) -> float:
    """n greyscale JPEGs of 400 x 480 (a few templates, varied names); mean KiB."""
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    templates = []
    for k in range(8):
        y, x = np.mgrid[0:480, 0:400]
        image = 128 + 60 * np.sin(x / (20 + k)) * np.cos(y / 30) + rng.normal(0, 8, (480, 400))
        path = folder / f"t{k}.jpg"
        Image.fromarray(np.clip(image, 0, 255).astype(np.uint8), "L").save(path, quality=90)
        templates.append(path.read_bytes())
    for i in range(n):
        (folder / f"{i:06d}.jpg").write_bytes(templates[i % 8])
    return float(np.mean([len(t) for t in templates]) / 1024)


def cache_child(folder: str, n: int, out: str) -> dict:
    from crrg_clip.data.cache import build_cache

    paths = [Path(folder) / f"{i:06d}.jpg" for i in range(n)]
    start = time.perf_counter()
    build_cache(paths, out, 512, kind="jpeg", workers=2, draft=True)
    build_s = time.perf_counter() - start
    usage = [resource.getrusage(w) for w in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)]
    cpu_s = sum(u.ru_utime + u.ru_stime for u in usage)  # this process + its (finished) workers
    build_peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    children_peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    from crrg_clip.data.region_dataset import open_image_cache  # after the build: workers fork without torch

    anon_before = anon_rss_mib()
    images = open_image_cache(out)
    start = time.perf_counter()
    total = 0
    for row in range(len(images)):  # what every reader does: one row at a time
        total += int(images[row].sum(dtype=np.int64))  # the whole row is read
    read_s = time.perf_counter() - start
    return {"images": n, "build_seconds": round(build_s, 1), "images_per_s": round(n / build_s, 1),
            "build_cpu_seconds": round(cpu_s, 1), "images_per_cpu_s": round(n / cpu_s, 1),
            "disk_mib": round(os.path.getsize(out) / 2**20, 1), "build_peak_rss_mib": round(build_peak, 1),
            "worker_peak_rss_mib": round(children_peak, 1), "read_seconds": round(read_s, 2),
            "reader_anon_rss_growth_mib": round(anon_rss_mib() - anon_before, 1),
            "memmap": isinstance(images, np.memmap), "checksum": total}


def bench_cache(tmp: Path, sizes: list[int]) -> dict:
    folder = tmp / "jpg"
    kib = write_jpegs(folder, max(sizes))
    rows = []
    for n in sizes:
        out = tmp / f"images_{n}.npy"
        proc = subprocess.run([sys.executable, __file__, "--cache-child", f"{folder}:{n}:{out}"],
                              capture_output=True, text=True, check=True)
        rows.append(json.loads(proc.stdout.strip().splitlines()[-1]))
        out.unlink()
        print(json.dumps(rows[-1]), flush=True)
    shutil.rmtree(folder)
    big = rows[-1]
    rate = big["images_per_cpu_s"]
    return {"jpeg_kib": round(kib, 1), "jpeg_side": "400 x 480", "cache_side": 512, "workers": 2, "rows": rows,
            "peak_rss_growth_mib_per_1000_images": round(
                1000 * (rows[-1]["build_peak_rss_mib"] - rows[0]["build_peak_rss_mib"])
                / max(1, rows[-1]["images"] - rows[0]["images"]), 2) if len(rows) > 1 else None,
            "projection_243k": {
                "disk_gib": round(REAL_IMAGES * 512 * 512 / 2**30, 1),
                "core_minutes_small_jpegs": round(REAL_IMAGES / rate / 60, 1),
                "note": "real MIMIC JPGs (2544 x 3056, ~1.5 MB) decode at ~13.7 images/s per core with draft() "
                        "(image_decode.md): 243k on 16 cores ~ " f"{REAL_IMAGES / (13.7 * 16 * 0.8) / 60:.0f} min"}}


def previous_scene_graphs(out: str) -> dict:
    """``--files none``: keep the scene-graph part of the last run (rerun the cache part only)."""
    previous = json.loads(Path(out).with_suffix(".json").read_text())["scene_graphs"]
    return {**previous, "from_previous_run": True}


def render(result: dict) -> str:
    sg, cache = result["scene_graphs"], result["cache"]
    lines = ["# Data path at full scale: scene graphs and image cache", "",
             f"- command: `{result['command']}`; {result['date']}; load average before {result['load_average']}",
             f"- machine: {os.cpu_count()} CPUs, shared with other jobs (times are lower bounds on speed; "
             "memory numbers are not affected)", "",
             f"## Scene graphs ({sg['file_kib']} KiB per file, one process each size, `workers=1`)", "",
             "| files | seconds | files/s | files per CPU-s | peak RSS MiB | Python heap peak MiB | rows returned MiB |",
             "|---|---|---|---|---|---|---|"]
    for r in sg["rows"]:
        lines.append(f"| {r['files']:,} | {r['seconds']} | {r['files_per_s']} | {r['files_per_cpu_s']} | {r['peak_rss_mib']} | "
                     f"{r['traced_peak_mib']} | {r['output_mib']} |")
    p = sg["projection_243k"]
    per = sg["mib_per_1000_files"]
    lines += ["", f"Growth per 1000 files: peak RSS {per['peak_rss_mib']} MiB, heap peak {per['traced_peak_mib']} "
              f"MiB, returned rows {per['output_mib']} MiB: memory grows only with the rows returned "
              f"(29 per file), not with the files read.",
              f"Projected for {REAL_FILES:,} files: {p['one_process_minutes']} CPU-minutes on one core of this machine; the workflow's 32 "
              f"shards of {p['per_shard_files']:,} files peak at ~{p['per_shard_peak_rss_mib']} MiB each; "
              f"`regions.parquet` holds {p['regions_rows']:,} rows (~{p['regions_frame_gib']} GiB as a pandas "
              "frame when gathered).", "",
             f"## Image cache ({cache['jpeg_side']} JPGs of {cache['jpeg_kib']} KiB -> {cache['cache_side']} px, "
             f"{cache['workers']} workers)", "",
             "| images | build s | images/s | images per CPU-s | disk MiB | builder peak RSS MiB | worker peak RSS MiB | "
             "read all rows s | reader anon RSS growth MiB |", "|---|---|---|---|---|---|---|---|---|"]
    for r in cache["rows"]:
        lines.append(f"| {r['images']:,} | {r['build_seconds']} | {r['images_per_s']} | {r['images_per_cpu_s']} | {r['disk_mib']} | "
                     f"{r['build_peak_rss_mib']} | {r['worker_peak_rss_mib']} | {r['read_seconds']} | "
                     f"{r['reader_anon_rss_growth_mib']} |")
    c = cache["projection_243k"]
    lines += ["", f"Projected for {REAL_IMAGES:,} images at 512 px: {c['disk_gib']} GiB on disk; "
              f"{c['core_minutes_small_jpegs']} core-minutes for these small JPGs; {c['note']}. "
              "The builder's and the workers' RSS does not grow with the image count: workers write each row "
              "with `os.pwrite` at its offset. Before (rows assigned into a writable memmap) a run of this bench "
              "earlier the same day measured a worker peak RSS of 521 MiB at 2,000 images and 2,247 MiB at 10,000, the "
              "written pages staying mapped (growing toward the 59 GiB file at 243k); the file is byte-identical "
              "(same checksums). Every reader opens the cache with `mmap_mode=\"r\"` "
              "(tests/test_cache_readers.py) and reads one row at a time: its anonymous RSS stays flat "
              "(the file pages it touches are page cache the kernel can drop)."]
    return "\n".join(lines) + "\n"


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", default="1000,4000,12000", help='"none": keep the last run\'s scene-graph part')
    parser.add_argument("--images", default="2000,10000")
    parser.add_argument("--out", default=str(RESULTS / "data_scale"))
    parser.add_argument("--parse-child", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--cache-child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.parse_child:
        folder, n = args.parse_child.rsplit(":", 1)
        print(json.dumps(parse_child(folder, int(n))))
        return
    if args.cache_child:
        folder, n, out = args.cache_child.split(":")
        print(json.dumps(cache_child(folder, int(n), out)))
        return
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    with tempfile.TemporaryDirectory(prefix="crrg-data-scale-") as tmp:
        result = {"command": " ".join([Path(sys.executable).name, *sys.argv]), "date": time.strftime("%Y-%m-%d %H:%M"),
                  "load_average": load,
                  "scene_graphs": previous_scene_graphs(args.out) if args.files == "none"
                  else bench_scene_graphs(Path(tmp), [int(x) for x in args.files.split(",")]),
                  "cache": bench_cache(Path(tmp), [int(x) for x in args.images.split(",")])}
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(result, indent=1) + "\n")
    out.with_suffix(".md").write_text(render(result))
    print(f"wrote {out}.{{md,json}}")


if __name__ == "__main__":
    main()
