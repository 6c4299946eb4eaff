"""Adapter for rule build_demo_bert: a small BertModel + WordPiece tokenizer trained on the demo corpus."""
import logging


from crrg_clip.models.demo_bert import build_demo_bert
from crrg_clip.data.corpus import training_findings
from crrg_clip.runtime import setup_logging

# `snakemake` is injected by Snakemake's script directive.
setup_logging(snakemake.log[0])
log = logging.getLogger("build_demo_bert")

texts = training_findings(snakemake.input.images)
build_demo_bert(texts, snakemake.output.bert, vocab_size=snakemake.params.vocab_size,
                bert=dict(snakemake.params.sizes), seed=snakemake.params.seed,
                max_position_embeddings=snakemake.params.max_positions)
log.info("demo BERT %s trained on %d FINDINGS texts -> %s", dict(snakemake.params.sizes), len(texts),
         snakemake.output.bert)
