"""Adapter for rule gather_regions: concatenate the scene-graph shards into regions.parquet."""
import logging

from crrg_clip.data.scene_graphs import gather_shards

# `snakemake` is injected by Snakemake's script directive.
logging.basicConfig(filename=snakemake.log[0], level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
regions = gather_shards(snakemake.input.shards)
regions.to_parquet(snakemake.output.regions, index=False)
logging.getLogger(__name__).info("%d region rows for %d images", len(regions), regions["dicom_id"].nunique())
