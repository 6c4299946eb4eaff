"""Adapter for rule figure4: one test image with its regions and sentences."""
import logging

from crrg_clip.figures import figure4

logging.basicConfig(filename=snakemake.log[0], level=logging.INFO, format="%(asctime)s %(message)s")
chosen = figure4(snakemake.input.predictions, snakemake.input.images, snakemake.input.index,
                 snakemake.params.dicom_id, snakemake.output.png, snakemake.output.csv)
logging.info("figure4: dicom_id %s", chosen)
