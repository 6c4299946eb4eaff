"""Adapter for rule qc_summary: gather exclusion parts, summarise, enforce the threshold."""
import logging

# `snakemake` is injected by Snakemake's script directive.
logging.basicConfig(filename=snakemake.log[0], level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
log = logging.getLogger(__name__)

from crrg_clip.data.exclusions import ExclusionThresholdError, check_threshold, merge_exclusions, merge_kept, summarise, write_exclusions

exclusions = merge_exclusions(snakemake.input.exclusions)
summary = summarise(exclusions, merge_kept(snakemake.input.kept))
write_exclusions(exclusions, snakemake.output.exclusions)
summary.to_csv(snakemake.output.summary, sep="\t", index=False)
log.info("summary:\n%s", summary.to_string(index=False))
try:
    check_threshold(summary, snakemake.params.max_excluded_fraction)
except ExclusionThresholdError as error:
    log.error("%s", error)  # the log keeps the table; Snakemake removes a failed job's outputs
    raise
