"""The explorer: one static page over a run's RRG predictions (``results/explorer/``).

``data`` collects the reports, region predictions, per-report metrics and CE labels;
``page`` writes ``index.html`` (everything inline) and the cache images beside it.
``build_explorer`` is what the ``explorer`` rule calls.
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from pathlib import Path

from .data import Run, cache_images, collect, image_ids
from .page import write_page


def build_explorer(out_dir: Path | str, runs: Sequence[Run], *, cache_images_path: str, cache_index_path: str,
                   references: dict[str, str] | None = None) -> dict:
    """Write the page for ``runs``; returns counts for the log."""
    out_dir = Path(out_dir)
    if out_dir.exists():
        shutil.rmtree(out_dir)  # a rebuilt page never keeps images of an earlier run
    document = collect(runs, references)
    images = cache_images(cache_images_path, cache_index_path, image_ids(document))
    write_page(out_dir, document, images)
    return {"systems": len(document["systems"]), "entries": len(document["entries"]), "images": len(images),
            "metrics": document["metrics"], "note": document["note"]}


__all__ = ["Run", "build_explorer"]
