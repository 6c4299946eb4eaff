"""Adapter for rule evaluate_probe: score one probe's RSNA test predictions."""
import logging
from pathlib import Path

from crrg_clip.evaluate.probe import evaluate_probe
from crrg_clip.evaluate.rrg import write_json

logging.basicConfig(filename=snakemake.log[0], level=logging.INFO, format="%(asctime)s %(message)s")
boot = snakemake.params.bootstrap
optional = [d for d in snakemake.params.optional_model_dirs if Path(d).is_dir()]
doc = evaluate_probe(
    encoder=snakemake.wildcards.encoder,
    seed=int(snakemake.wildcards.seed),
    predictions_path=snakemake.input.predictions,
    rsna_path=snakemake.input.rsna,
    resamples=boot["resamples"],
    bootstrap_seed=boot["seed"],
    confidence=boot["confidence"],
    bootstrap_unit=boot["unit"],
    model_dirs=[*snakemake.params.model_dirs, *optional],
    upstream=[p for p in snakemake.params.upstream if Path(p).is_file()],
    command=snakemake.params.command,
)
logging.info("%s seed %s: %s", doc["system"], doc["seed"],
             {k: round(v["value"], 4) for k, v in doc["metrics"].items()})
write_json(doc, snakemake.output.metrics)
