"""Scene-graph parsing speed: files/s with 1 vs 2 worker processes.

Writes a few hundred realistic-size (~40 KB) scene-graph JSONs to a temporary folder and
parses them with crrg_clip.data.scene_graphs.parse_scene_graph_files. Writes
benchmarks/results/scene_graphs.md. Usage: python benchmarks/bench_scene_graphs.py [n_files]
"""

from __future__ import annotations

import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from crrg_clip.data.scene_graphs import list_scene_graph_files, parse_scene_graph_files
from crrg_clip.regions import REGIONS

OUT = Path(__file__).resolve().parent / "results" / "scene_graphs.md"
EXTRA_OBJECTS = ("left chest wall", "right chest wall", "left breast", "right breast", "neck",
                 "left shoulder", "right shoulder")


def fake_graph(rng: np.random.Generator, i: int) -> tuple[str, dict]:
    dicom = "-".join(f"{int(v):08x}" for v in rng.integers(0, 2**32, 5))
    objects = []
    for name in REGIONS + EXTRA_OBJECTS:
        x1, y1 = (int(v) for v in rng.integers(-20, 1500, 2))
        w, h = (int(v) for v in rng.integers(50, 1200, 2))
        objects.append({"object_id": f"{dicom}_{name}", "x1": x1 // 11, "y1": y1 // 13, "x2": (x1 + w) // 11,
                        "y2": (y1 + h) // 13, "width": w // 11, "height": h // 13, "bbox_name": name,
                        "synsets": ["C0225706"], "name": name.capitalize(), "original_x1": x1,
                        "original_y1": y1, "original_x2": x1 + w, "original_y2": y1 + h,
                        "original_width": w, "original_height": h, "updated": bool(i % 2)})
    attributes = []
    for name in rng.choice(REGIONS, size=14, replace=False):
        n = int(rng.integers(1, 4))
        attributes.append({
            "bbox_name": str(name), "name": str(name).capitalize(), str(name): True,
            "synsets": ["C0225706"],
            "attributes": [["anatomicalfinding|yes|lung opacity", "disease|no|pneumonia",
                            "nlp|yes|abnormal" if rng.random() < 0.3 else "nlp|yes|normal",
                            "technicalassessment|no|low lung volumes"] for _ in range(n)],
            "attributes_ids": [["CL001", "CL002", "CL003"] for _ in range(n)],
            "phrases": [f"There is a {int(rng.integers(3, 40))} mm opacity in the {name}\n which is "
                        "unchanged from the prior study allowing for differences in technique." for _ in range(n)],
            "phrase_IDs": [f"5{i:07d}|{k}" for k in range(n)], "sections": ["finalreport"] * n,
            "comparison_cues": [[] for _ in range(n)], "temporal_cues": [[] for _ in range(n)],
            "severity_cues": [["mild"] for _ in range(n)], "texture_cues": [[] for _ in range(n)],
            "object_id": f"{dicom}_{name}",
        })
    relationships = [{"relationship_id": f"{dicom}|{k}", "predicate": "['No change']", "synsets": ["C0442739"],
                      "relationship_names": ["comparison|yes|no change"], "relationship_contexts": [1.0],
                      "phrase": "Unchanged appearance of the right lower lobe opacity compared to the prior.",
                      "attributes": ["anatomicalfinding|yes|lung opacity"], "bbox_name": str(REGIONS[k % 29]),
                      "subject_id": f"{dicom}_{REGIONS[k % 29]}", "object_id": f"prior_{REGIONS[k % 29]}"}
                     for k in range(40)]
    data = {"image_id": dicom, "viewpoint": "PA", "patient_id": 10000000 + i, "study_id": 50000000 + i,
            "gender": "F", "age_decile": "60-70", "reason_for_exam": "___ with cough, evaluate for pneumonia",
            "StudyOrder": 2, "StudyDateTime": "2180-05-06 09:12:00", "objects": objects,
            "attributes": attributes, "relationships": relationships}
    return dicom, data


def rate(files: list[Path], workers: int, repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        parse_scene_graph_files(files, {}, workers=workers)
        best = min(best, time.perf_counter() - start)
    return len(files) / best


def main(n_files: int = 400, repeats: int = 3) -> None:
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "silver_dataset" / "scene_graph"
        folder.mkdir(parents=True)
        for i in range(n_files):
            dicom, data = fake_graph(rng, i)
            (folder / f"{dicom}_SceneGraph.json").write_text(json.dumps(data))
        files = list_scene_graph_files(tmp)
        mean_kb = np.mean([f.stat().st_size for f in files]) / 1024
        one = rate(files, 1, repeats)
        two = rate(files, 2, repeats)
    text = f"""# Scene-graph parsing: files/s, 1 vs 2 worker processes

Command: `.venv/bin/python benchmarks/bench_scene_graphs.py {n_files}`
Machine: {platform.machine()}, {os.cpu_count()} CPUs visible, Python {platform.python_version()}
Files: {n_files} synthetic scene graphs, mean {mean_kb:.1f} KiB (36 objects, 14 region entries, 40 relationships); best of {repeats} passes.

| workers | files/s | files/s per worker |
|---|---|---|
| 1 | {one:.0f} | {one:.0f} |
| 2 | {two:.0f} | {two / 2:.0f} |

Speed-up with 2 workers: **{two / one:.2f}x**. At {one:.0f} files/s per core, the real 243,310 files take
about {243310 / one / 60:.0f} core-minutes.
"""
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(text)
    print(text)


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 400)
