"""Adapter for rule join_imagenome: images.parquet, the joined ImaGenome images kept."""
import logging

# `snakemake` is injected by Snakemake's script directive.
logging.basicConfig(filename=snakemake.log[0], level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
log = logging.getLogger(__name__)

import pandas as pd

from crrg_clip.data.exclusions import write_kept
from crrg_clip.data.mimic import IMAGENOME_DATASET, join_imagenome

images, exclusions = join_imagenome(
    snakemake.params.root,
    images=pd.read_parquet(snakemake.input.images),
    reports=pd.read_parquet(snakemake.input.reports),
    regions=pd.read_parquet(snakemake.input.regions, columns=["dicom_id"]),
)
images.to_parquet(snakemake.output.images, index=False)
exclusions.write(snakemake.output.exclusions)
write_kept({IMAGENOME_DATASET: len(images)}, snakemake.output.kept)
log.info("kept per split: %s; %d excluded", images["split"].value_counts().to_dict(), len(exclusions))
