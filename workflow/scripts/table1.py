"""Adapter for rule table1: Table 1 (CSV, Markdown, provenance) from the summary metrics."""
import logging

from crrg_clip.tables import write_table1

logging.basicConfig(filename=snakemake.log[0], level=logging.INFO, format="%(asctime)s %(message)s")
out, params = snakemake.output, snakemake.params
frame = write_table1(params.entries, out.csv, out.md, out.provenance, test_subsample=params.test_subsample,
                     labelers=params.labelers, config=dict(params.config), command=params.command)
logging.info("table1: %d rows (%d ours)", len(frame), len(params.entries))
