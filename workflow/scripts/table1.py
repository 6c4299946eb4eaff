"""Adapter for rule table1: format Table 1 from summary metrics and write its provenance."""
import logging

from crrg_clip.provenance import write_table_provenance
from crrg_clip.tables import TABLE1_COMPARISONS, TABLE1_METRICS, build_table1, table1_notes, write_table

logging.basicConfig(filename=snakemake.log[0], level=logging.INFO, format="%(asctime)s %(message)s")
entries = snakemake.params.entries
frame = build_table1(entries)
out = snakemake.output
write_table(frame, out.csv, out.md, ["model", "dataset"], [*TABLE1_METRICS, *TABLE1_COMPARISONS],
            "Table 1: report generation (MIMIC-CXR test split)")
with open(out.md, "a") as handle:
    handle.write(table1_notes(snakemake.params.test_subsample, snakemake.params.labelers))
write_table_provenance(out.csv, out.md, out.provenance, entries, [*TABLE1_METRICS, *TABLE1_COMPARISONS],
                       dict(snakemake.params.config), snakemake.params.command)
logging.info("table1: %d rows (%d ours)", len(frame), len(entries))
