"""Adapter for rule build_demo_gpt2: a small GPT-2 + BPE tokenizer trained on the demo corpus."""
import logging

# `snakemake` is injected by Snakemake's script directive.
logging.basicConfig(filename=snakemake.log[0], level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
log = logging.getLogger(__name__)

import pandas as pd

from crrg_clip.models.demo_gpt2 import build_demo_gpt2, demo_corpus, save_demo_gpt2

sizes = dict(snakemake.params.sizes)
sizes.setdefault("n_positions", snakemake.params.min_positions)
texts = demo_corpus(pd.read_parquet(snakemake.input.images), pd.read_parquet(snakemake.input.regions))
model, tokenizer = build_demo_gpt2(texts, vocab_size=snakemake.params.vocab_size, seed=snakemake.params.seed, **sizes)
save_demo_gpt2(snakemake.output.gpt2, model, tokenizer)
log.info("demo GPT-2 %s, vocabulary %d, trained on %d texts", sizes, len(tokenizer), len(texts))
