"""Adapter for rule ingest_rsna: rsna.parquet with labels, split and training subset."""
import logging

# `snakemake` is injected by Snakemake's script directive.
logging.basicConfig(filename=snakemake.log[0], level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
log = logging.getLogger(__name__)

from crrg_clip.data.exclusions import write_kept
from crrg_clip.data.rsna import DATASET, ingest_rsna

rsna, exclusions = ingest_rsna(
    snakemake.params.root,
    test_size=snakemake.params.test_size,
    seed=snakemake.params.seed,
    max_rows=dict(snakemake.params.max_rows),
    train_subset=snakemake.params.train_subset,
    workers=snakemake.threads,
)
rsna.to_parquet(snakemake.output.rsna, index=False)
exclusions.write(snakemake.output.exclusions)
write_kept({DATASET: len(rsna)}, snakemake.output.kept)
log.info("split sizes %s, train subset %d, %d excluded", rsna["split"].value_counts().to_dict(), int(rsna["in_train_subset"].sum()), len(exclusions))
