"""Adapter for rule subsample: a seeded patient-level subsample + its id lists."""
import logging

# `snakemake` is injected by Snakemake's script directive.
logging.basicConfig(filename=snakemake.log[0], level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
log = logging.getLogger(__name__)

import pandas as pd

from crrg_clip.data.splits import subsample, write_id_lists

chosen = subsample(pd.read_parquet(snakemake.input.images), dict(snakemake.params.sizes), snakemake.params.seed)
chosen.to_parquet(snakemake.output.split, index=False)
write_id_lists(chosen, snakemake.output.ids)
log.info("%s: %s images per split", snakemake.wildcards.subsample, chosen["split"].value_counts().to_dict())
