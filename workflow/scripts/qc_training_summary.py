"""Adapter for rule qc_training_summary: CLIP-text exclusions, back-translation fallbacks and
what the RRG stages left out."""
import logging

from crrg_clip.data.exclusions import (
    backtranslation_summary, merge_exclusions, merge_kept, rrg_left_out_summary, summarise, write_exclusions,
)

logging.basicConfig(filename=snakemake.log[0], level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
exclusions = merge_exclusions(snakemake.input.exclusions)
write_exclusions(exclusions, snakemake.output.exclusions)
summary = summarise(exclusions, merge_kept(snakemake.input.kept))
summary = backtranslation_summary(summary, snakemake.input.backtranslation)
summary = rrg_left_out_summary(summary, snakemake.input.rrg_runs)
summary.to_csv(snakemake.output.summary, sep="\t", index=False)
logging.info("summary:\n%s", summary.to_string(index=False))
