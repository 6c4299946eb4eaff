"""Adapter for rule ingest_mimic_images: mimic_images.parquet (readable JPGs only)."""
import logging

# `snakemake` is injected by Snakemake's script directive.
logging.basicConfig(filename=snakemake.log[0], level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
log = logging.getLogger(__name__)

from crrg_clip.data.exclusions import write_kept
from crrg_clip.data.mimic import JPG_DATASET, ingest_mimic_images

images, exclusions = ingest_mimic_images(snakemake.params.root, workers=snakemake.threads)
images.to_parquet(snakemake.output.images, index=False)
exclusions.write(snakemake.output.exclusions)
write_kept({JPG_DATASET: len(images)}, snakemake.output.kept)
log.info("%d readable images, %d excluded", len(images), len(exclusions))
