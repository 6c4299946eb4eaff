"""Adapter for rule cache_rsna: letterboxed cache of every RSNA image in rsna.parquet."""
import logging

# `snakemake` is injected by Snakemake's script directive.
logging.basicConfig(filename=snakemake.log[0], level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
log = logging.getLogger(__name__)

from pathlib import Path

import pandas as pd

from crrg_clip.data.cache import cache_rsna

index = cache_rsna(
    pd.read_parquet(snakemake.input.rsna),
    snakemake.params.root,
    Path(snakemake.output.images).parent,
    snakemake.params.size,
    workers=snakemake.threads,
)
index.to_parquet(snakemake.output.index, index=False)
log.info("cached %d images at %d px", len(index), snakemake.params.size)
