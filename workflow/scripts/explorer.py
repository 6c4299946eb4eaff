"""Adapter for rule explorer: the static page over every RRG system's test predictions."""
import logging

import pandas as pd

from crrg_clip.explorer import Run, build_explorer

logging.basicConfig(filename=snakemake.log[0], level=logging.INFO, format="%(asctime)s %(message)s")
images = pd.read_parquet(snakemake.input.findings, columns=["dicom_id", "findings"])
references = dict(zip(images["dicom_id"].astype(str), images["findings"].fillna("").astype(str)))
runs = [Run(**run) for run in snakemake.params.runs]
summary = build_explorer(snakemake.output.page, runs, cache_images_path=snakemake.input.images,
                         cache_index_path=snakemake.input.index, references=references)
logging.info("explorer: %s", summary)
