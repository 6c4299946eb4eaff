"""Adapter for rule build_demo_marian: the demo's en -> it and it -> en MarianMTModel pair,
tokenizers trained on the demo corpus, trained briefly on a word-mapped parallel corpus."""
import json
import logging

import torch

from crrg_clip.models.demo_marian import build_demo_marian_pair
from crrg_clip.data.corpus import training_findings
from crrg_clip.runtime import set_threads, setup_logging

# `snakemake` is injected by Snakemake's script directive.
setup_logging(snakemake.log[0])
log = logging.getLogger("build_demo_marian")
set_threads(snakemake.config["torch_threads"] or snakemake.threads)  # a run-time choice, not a param

texts = training_findings(snakemake.input.images)

# The synthetic data's manifest may name the en -> it word map; otherwise made-up words.
lexicon = None
if snakemake.input.get("manifest"):
    manifest = json.loads(open(snakemake.input.manifest).read())
    lexicon = manifest.get("translation_lexicon")
    if lexicon is not None:
        lexicon = {str(k).lower(): str(v) for k, v in lexicon.items()}
log.info("lexicon: %s", "manifest translation_lexicon" if lexicon else "made-up words")

summary = build_demo_marian_pair(
    texts, snakemake.output.en_it, snakemake.output.it_en, vocab_size=snakemake.params.vocab_size,
    sizes=dict(snakemake.params.sizes), train_steps=snakemake.params.train_steps,
    batch_size=snakemake.params.train_batch_size, max_length=snakemake.params.max_length,
    seed=snakemake.params.seed, lexicon=lexicon, unit=snakemake.params.unit)
log.info("demo Marian pair from %d FINDINGS texts (torch threads %d): %s", len(texts),
         torch.get_num_threads(), json.dumps(summary))
