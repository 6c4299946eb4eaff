"""results/cache readers never load a whole cache into RAM: every np.load is a memmap.

At the full dataset the MIMIC cache is ~60 GiB (243k x 512 x 512 uint8,
benchmarks/results/data_scale.md); a reader that drops ``mmap_mode`` would read all of it.
"""

import ast
from pathlib import Path

import numpy as np
import pytest

from crrg_clip.data.cache import build_cache
from crrg_clip.data.region_dataset import open_image_cache

SRC = Path(__file__).resolve().parents[1] / "src" / "crrg_clip"
WRITERS = {("data/cache.py", "r+")}  # the cache builder's workers write their rows in place


def np_load_calls():
    for path in sorted(SRC.rglob("*.py")):
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "load"
                    and isinstance(node.func.value, ast.Name) and node.func.value.id in {"np", "numpy"}):
                mode = next((k.value for k in node.keywords if k.arg == "mmap_mode"), None)
                yield path.relative_to(SRC).as_posix(), node.lineno, mode


def test_every_np_load_in_the_package_is_a_memmap():
    calls = list(np_load_calls())
    assert len(calls) >= 4  # detector/selector data, CLIP, probe, figures read the caches
    for where, line, mode in calls:
        assert isinstance(mode, ast.Constant), f"{where}:{line}: np.load without mmap_mode"
        assert mode.value == "r" or (where, mode.value) in WRITERS, f"{where}:{line}: mmap_mode={mode.value!r}"


def test_open_image_cache_is_a_read_only_memmap(tmp_path):
    from PIL import Image

    paths = []
    for i in range(3):
        path = tmp_path / f"{i}.jpg"
        Image.fromarray(np.full((40, 30), 50 * i, dtype=np.uint8), "L").save(path)
        paths.append(path)
    build_cache(paths, tmp_path / "images.npy", 32)
    images = open_image_cache(tmp_path / "images.npy")
    assert isinstance(images, np.memmap) and images.mode == "r"
    assert not images.flags.writeable
    with pytest.raises(ValueError):
        images[0, 0, 0] = 1
    assert images.shape == (3, 32, 32) and int(images[2].max()) > 0


@pytest.mark.parametrize("workers", [1, 2])
def test_cache_rows_are_the_decoded_images_at_their_offsets(tmp_path, workers):
    """Rows are written with os.pwrite at header offset + row * S * S: each row is its own image."""
    from PIL import Image

    from crrg_clip.data.images import load_jpeg_letterbox

    rng = np.random.default_rng(0)
    paths = []
    for i in range(5):
        path = tmp_path / f"{i}.jpg"
        Image.fromarray(rng.integers(0, 255, (50 + 7 * i, 40), dtype=np.uint8), "L").save(path)
        paths.append(path)
    build_cache(paths, tmp_path / "images.npy", 24, workers=workers, chunksize=1)
    images = open_image_cache(tmp_path / "images.npy")
    for i, path in enumerate(paths):
        expected, _ = load_jpeg_letterbox(path, 24, draft=True)
        assert np.array_equal(images[i], expected), i
