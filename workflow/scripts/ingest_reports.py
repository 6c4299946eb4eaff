"""Adapter for rule ingest_reports: reports.parquet + the reports exclusions."""
import logging

# `snakemake` is injected by Snakemake's script directive.
logging.basicConfig(filename=snakemake.log[0], level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
log = logging.getLogger(__name__)

from crrg_clip.data.exclusions import write_kept
from crrg_clip.data.reports import DATASET, ingest_reports

reports, exclusions = ingest_reports(snakemake.params.root)
reports.to_parquet(snakemake.output.reports, index=False)
exclusions.write(snakemake.output.exclusions)
write_kept({DATASET: len(reports)}, snakemake.output.kept)
log.info("%d reports kept (%d with FINDINGS), %d excluded", len(reports), int(reports["has_findings"].sum()), len(exclusions))
