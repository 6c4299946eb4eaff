"""Adapter for rules summarize_rrg / summarize_probe: combine a system's training seeds."""
import logging

from crrg_clip.evaluate.aggregate import summarize
from crrg_clip.evaluate.rrg import write_json

logging.basicConfig(filename=snakemake.log[0], level=logging.INFO, format="%(asctime)s %(message)s")
summary = summarize(list(snakemake.input.metrics))
logging.info("%s: %d seed(s)", summary["system"], summary["n_seeds"])
write_json(summary, snakemake.output.summary)
