"""Adapter for rules compare_rrg / compare_probe: paired bootstrap differences of two systems."""
import json
import logging

from crrg_clip.evaluate.comparison import compare_systems

logging.basicConfig(filename=snakemake.log[0], level=logging.INFO, format="%(asctime)s %(message)s")
params = snakemake.params
system = snakemake.wildcards.get("system") or snakemake.wildcards.get("encoder")
doc = compare_systems(system=system, reference=params.reference, reference_label=params.reference_label,
                      metrics_paths=list(snakemake.input.metrics), reference_paths=list(snakemake.input.reference),
                      metrics=list(params.metrics), command=params.command)
with open(snakemake.output.comparison, "w") as handle:
    json.dump(doc, handle, indent=1)
logging.info("%s vs %s: %s", system, params.reference, doc["differences"])
