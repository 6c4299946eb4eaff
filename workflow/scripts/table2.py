"""Adapter for rule table2: format Table 2 from probe summaries and write its provenance."""
import logging

from crrg_clip.provenance import write_table_provenance
from crrg_clip.tables import PAIRED_AUC, TABLE2_METRICS, all_negative_entry, build_table2, table2_notes, write_table

logging.basicConfig(filename=snakemake.log[0], level=logging.INFO, format="%(asctime)s %(message)s")
entries = snakemake.params.entries
all_negative = all_negative_entry(entries)
frame = build_table2(entries, all_negative)
out = snakemake.output
write_table(frame, out.csv, out.md, ["model", "method", "dataset"],
            ["AUC", "Accuracy", "AllNegativeAccuracy", PAIRED_AUC],
            "Table 2: RSNA pneumonia classification (linear probe)")
with open(out.md, "a") as handle:
    handle.write(table2_notes())
write_table_provenance(out.csv, out.md, out.provenance, [*entries, *([all_negative] if all_negative else [])],
                       [*TABLE2_METRICS, PAIRED_AUC], dict(snakemake.params.config), snakemake.params.command,
                       label=lambda e: f"{e['model']} / {e['method']}")
logging.info("table2: %d rows (%d ours)", len(frame), len(entries))
