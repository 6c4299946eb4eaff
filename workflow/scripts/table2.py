"""Adapter for rule table2: Table 2 (CSV, Markdown, provenance) from the probe summaries."""
import logging

from crrg_clip.tables import write_table2

logging.basicConfig(filename=snakemake.log[0], level=logging.INFO, format="%(asctime)s %(message)s")
out, params = snakemake.output, snakemake.params
frame = write_table2(params.entries, out.csv, out.md, out.provenance, config=dict(params.config),
                     command=params.command)
logging.info("table2: %d rows (%d ours)", len(frame), len(params.entries))
