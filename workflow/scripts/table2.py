"""Adapter for rule table2: format Table 2 from probe summaries and write its provenance."""
import json
import logging

from crrg_clip.provenance import table_provenance
from crrg_clip.tables import PAIRED_AUC, TABLE2_METRICS, build_table2, write_table

logging.basicConfig(filename=snakemake.log[0], level=logging.INFO, format="%(asctime)s %(message)s")
entries = snakemake.params.entries
all_negative = None
if entries:
    first = entries[0]
    all_negative = {"summary": first["summary"], "model": "All-negative", "dataset": first["dataset"],
                    "method": "predicts 'no pneumonia' for every image", "source": "reproduced"}
frame = build_table2(entries, all_negative)
out = snakemake.output
write_table(frame, out.csv, out.md, ["model", "method", "dataset"],
            ["AUC", "Accuracy", "AllNegativeAccuracy", PAIRED_AUC],
            "Table 2: RSNA pneumonia classification (linear probe)")
with open(out.md, "a") as handle:
    handle.write(f"\n{PAIRED_AUC}: the row's test AUC minus the random-init probe's on the same test "
                 "images, with a paired bootstrap CI (the same resamples for both probes).\n")
rows = []
for e in entries:
    summary = json.load(open(e["summary"]))
    rows.append({"row": f"{e['model']} / {e['method']}", "model": e["model"], "system": e["system"],
                 "source": e["source"], "summary": e["summary"], "metrics": e["metrics"],
                 "values": {m: summary["metrics"][m]["mean"] for m in TABLE2_METRICS}})
doc = table_provenance(out.csv, rows, dict(snakemake.params.config), snakemake.params.command, [out.md])
with open(out.provenance, "w") as handle:
    json.dump(doc, handle, indent=1)
logging.info("table2: %d rows (%d ours)", len(frame), len(entries))
