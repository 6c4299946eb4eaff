"""Adapter for rule build_demo_bert: a small BertModel + WordPiece tokenizer trained on the demo corpus."""
import logging

import pandas as pd

from crrg_clip.models.demo_bert import build_demo_bert
from crrg_clip.runtime import setup_logging

# `snakemake` is injected by Snakemake's script directive.
setup_logging(snakemake.log[0])
log = logging.getLogger("build_demo_bert")

images = pd.read_parquet(snakemake.input.images)
for column in ("dicom_id", "split", "findings"):
    if column not in images.columns:
        raise ValueError(f"{snakemake.input.images}: missing column {column!r}")
train = images[images["split"] == "train"].sort_values("dicom_id", kind="stable")
texts = [t for t in train["findings"].fillna("").astype(str).str.strip() if t]
if not texts:
    raise ValueError(f"{snakemake.input.images}: no FINDINGS in the training split to train the demo tokenizer on")
build_demo_bert(texts, snakemake.output.bert, vocab_size=snakemake.params.vocab_size,
                bert=dict(snakemake.params.sizes), seed=snakemake.params.seed,
                max_position_embeddings=snakemake.params.max_positions)
log.info("demo BERT %s trained on %d FINDINGS texts -> %s", dict(snakemake.params.sizes), len(texts),
         snakemake.output.bert)
