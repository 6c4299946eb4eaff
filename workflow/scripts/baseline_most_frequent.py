"""Adapter for rule baseline_most_frequent: the most frequent training FINDINGS for every test image."""
import logging

import pandas as pd

from crrg_clip.evaluate.baseline import most_frequent_reports

logging.basicConfig(filename=snakemake.log[0], level=logging.INFO, format="%(asctime)s %(message)s")
reports = most_frequent_reports(pd.read_parquet(snakemake.input.images), pd.read_parquet(snakemake.input.split),
                               pd.read_parquet(snakemake.input.test_split))
logging.info("%d test images get: %s", len(reports), reports["report"].iloc[0] if len(reports) else "")
reports.to_parquet(snakemake.output.reports, index=False)
