"""Adapter for rule cache_mimic: letterboxed cache of every image of every subsampled study."""
import logging

# `snakemake` is injected by Snakemake's script directive.
logging.basicConfig(filename=snakemake.log[0], level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
log = logging.getLogger(__name__)

from pathlib import Path

import pandas as pd

from crrg_clip.data.cache import cache_mimic

index, regions = cache_mimic(
    images=pd.read_parquet(snakemake.input.images),
    subsamples=[pd.read_parquet(p) for p in snakemake.input.subsamples],
    regions=pd.read_parquet(snakemake.input.regions),
    jpg_root=snakemake.params.root,
    out_dir=Path(snakemake.output.images).parent,
    size=snakemake.params.size,
    workers=snakemake.threads,
    draft=snakemake.params.draft,
)
index.to_parquet(snakemake.output.index, index=False)
regions.to_parquet(snakemake.output.regions, index=False)
log.info("cached %d images at %d px", len(index), snakemake.params.size)
