"""Adapter for rule gather_regions: concatenate the scene-graph shards into regions.parquet."""
import logging

# `snakemake` is injected by Snakemake's script directive.
logging.basicConfig(filename=snakemake.log[0], level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
log = logging.getLogger(__name__)

import pandas as pd

regions = pd.concat([pd.read_parquet(p) for p in snakemake.input.shards], ignore_index=True)
regions = regions.sort_values(["dicom_id", "region_index"]).reset_index(drop=True)
if regions.duplicated(["dicom_id", "region_index"]).any():
    raise ValueError("regions: a (dicom_id, region_index) pair occurs in two shards")
regions.to_parquet(snakemake.output.regions, index=False)
log.info("%d region rows for %d images", len(regions), regions["dicom_id"].nunique())
