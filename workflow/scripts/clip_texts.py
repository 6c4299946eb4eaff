"""Adapter for rule clip_texts: the R-CLIP texts of one source, exclusions recorded."""
import logging

import pandas as pd

from crrg_clip.data.clip_dataset import generated_texts, radiologist_texts
from crrg_clip.data.exclusions import write_kept
from crrg_clip.runtime import setup_logging

# `snakemake` is injected by Snakemake's script directive.
setup_logging(snakemake.log[0])
log = logging.getLogger("clip_texts")

text = snakemake.wildcards.text
splits = list(snakemake.params.splits)
subsample = pd.read_parquet(snakemake.input.split)
if text == "radiologist":
    texts, exclusions = radiologist_texts(pd.read_parquet(snakemake.input.images), subsample, splits)
else:
    paths = snakemake.input.reports
    reports = pd.concat([pd.read_parquet(p) for p in ([paths] if isinstance(paths, str) else paths)],
                        ignore_index=True)
    texts, exclusions = generated_texts(reports, subsample, splits)
texts.to_parquet(snakemake.output.texts, index=False)
exclusions.write(snakemake.output.exclusions)
write_kept({f"rclip-texts-{text}": len(texts)}, snakemake.output.kept)
for split in splits:
    log.info("%s texts, %s split: %d kept", text, split, int((texts["split"] == split).sum()))
reasons = exclusions.to_frame()["reason"].value_counts().to_dict() if len(exclusions) else {}
log.info("%s texts: %d images excluded %s (see %s)", text, len(exclusions), reasons, snakemake.output.exclusions)
