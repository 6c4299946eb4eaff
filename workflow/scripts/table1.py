"""Adapter for rule table1: format Table 1 from summary metrics and write its provenance."""
import json
import logging

from crrg_clip.provenance import table_provenance
from crrg_clip.tables import TABLE1_METRICS, build_table1, write_table

logging.basicConfig(filename=snakemake.log[0], level=logging.INFO, format="%(asctime)s %(message)s")
entries = snakemake.params.entries
frame = build_table1(entries)
out = snakemake.output
write_table(frame, out.csv, out.md, ["model", "dataset"], TABLE1_METRICS,
            "Table 1: report generation (MIMIC-CXR test split)")
rows = [{"row": e["model"], "model": e["model"], "system": e["system"], "source": e["source"],
         "summary": e["summary"], "metrics": e["metrics"],
         "values": {m: json.load(open(e["summary"]))["metrics"][m]["mean"] for m in TABLE1_METRICS}}
        for e in entries]
doc = table_provenance(out.csv, rows, dict(snakemake.params.config), snakemake.params.command, [out.md])
with open(out.provenance, "w") as handle:
    json.dump(doc, handle, indent=1)
logging.info("table1: %d rows (%d ours)", len(frame), len(entries))
