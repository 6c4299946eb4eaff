"""Adapter for rule qc_training_summary: CLIP-text exclusions and back-translation fallbacks."""
import logging

from crrg_clip.data.exclusions import backtranslation_summary, merge_exclusions, merge_kept, summarise, write_exclusions

logging.basicConfig(filename=snakemake.log[0], level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
exclusions = merge_exclusions(snakemake.input.exclusions)
write_exclusions(exclusions, snakemake.output.exclusions)
summary = summarise(exclusions, merge_kept(snakemake.input.kept))
summary = backtranslation_summary(summary, snakemake.input.backtranslation)
summary.to_csv(snakemake.output.summary, sep="\t", index=False)
logging.info("summary:\n%s", summary.to_string(index=False))
