"""Adapter for rule parse_scene_graphs: one shard of the scene graphs -> region rows."""
import logging

# `snakemake` is injected by Snakemake's script directive.
logging.basicConfig(filename=snakemake.log[0], level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
log = logging.getLogger(__name__)

from crrg_clip.data.exclusions import write_kept
from crrg_clip.data.scene_graphs import (
    BOXES_DATASET, FILES_DATASET, list_scene_graph_files, parse_scene_graph_files, read_image_sizes, shard,
)

files = shard(list_scene_graph_files(snakemake.params.root), int(snakemake.wildcards.shard), snakemake.params.n_shards)
sizes = read_image_sizes(snakemake.params.metadata)
regions, exclusions = parse_scene_graph_files(files, sizes, workers=snakemake.threads)
regions.to_parquet(snakemake.output.regions, index=False)
exclusions.write(snakemake.output.exclusions)
write_kept(
    {FILES_DATASET: int(regions["dicom_id"].nunique()), BOXES_DATASET: int(regions["box_valid"].sum())},
    snakemake.output.kept,
)
log.info("shard %s: %d files, %d region rows, %d exclusions", snakemake.wildcards.shard, len(files), len(regions), len(exclusions))
