"""Adapter for rule demo_data: write the synthetic datasets and their manifest."""

import logging
import time

# `snakemake` is injected by Snakemake's script directive.
logging.basicConfig(
    filename=snakemake.log[0], level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s"
)
log = logging.getLogger(__name__)

from crrg_clip.data.synthetic import write_synthetic_dataset

start = time.perf_counter()
manifest = write_synthetic_dataset(
    snakemake.params.reports_root,
    snakemake.params.jpg_root,
    snakemake.params.imagenome_root,
    snakemake.params.rsna_root,
    snakemake.output.manifest,
    **dict(snakemake.params.synthetic),
)
log.info("wrote the synthetic datasets in %.1f s: %s", time.perf_counter() - start, manifest["counts"])
for fault in manifest["faults"]:
    log.info("planted fault: %s", fault)
