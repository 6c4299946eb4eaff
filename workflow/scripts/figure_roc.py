"""Adapter for rule roc_curves: ROC curves of the Table 2 probes from their metrics JSON."""
import logging
from pathlib import Path

from crrg_clip.figures import roc_figure

logging.basicConfig(filename=snakemake.log[0], level=logging.INFO, format="%(asctime)s %(message)s")
Path(snakemake.output.png).parent.mkdir(parents=True, exist_ok=True)
roc_figure(list(snakemake.input.metrics), list(snakemake.params.labels), snakemake.output.png)
