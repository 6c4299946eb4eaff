"""Adapter for rule train_generator: RRG stage 3 (region-conditioned GPT-2)."""
# `snakemake` is injected by Snakemake's script directive.
import os

from crrg_clip.runtime import setup_logging

setup_logging(snakemake.log[0])

from crrg_clip.train.generator import run_train_generator

schedule = dict(snakemake.params.schedule)
settings = {"variant": snakemake.wildcards.variant, "schedule": schedule,
            **{k: snakemake.params[k] for k in ("gpt2_source", "freeze", "feature_dim", "hidden_dim",
                                                 "max_sentence_tokens", "amp", "input_kind")}}
run_train_generator(
    gpt2_source=snakemake.params.gpt2_source,
    selector_folder=os.path.dirname(snakemake.input.selector_config),
    train_features=snakemake.input.train_features,
    valid_features=snakemake.input.valid_features,
    regions_path=snakemake.input.regions,
    output_dir=snakemake.output.generator,
    checkpoint_dir=snakemake.params.checkpoint_dir,
    seed=int(snakemake.wildcards.seed),
    device=snakemake.params.device,
    epochs=schedule["epochs"],
    batch_size=schedule["batch_size"],
    lr=schedule["lr"],
    weight_decay=schedule.get("weight_decay", 0.01),
    factor=schedule.get("factor", 0.5),
    cooldown=schedule.get("cooldown", 5),
    patience=schedule.get("patience", 5),
    eval_every=schedule.get("eval_every"),
    freeze_gpt2=snakemake.params.freeze,
    feature_dim=snakemake.params.feature_dim,
    hidden_dim=snakemake.params.hidden_dim,
    max_sentence_tokens=snakemake.params.max_sentence_tokens,
    amp=snakemake.params.amp,
    threads=snakemake.params.torch_threads,
    settings=settings,
    input_kind=snakemake.params.input_kind,
)
