"""Adapter for rules train_clip and train_convirt: CLIP pretraining (R-CLIP or ConVIRT losses) on one
text source and seed."""
import logging

from crrg_clip.runtime import pick_device, set_threads, setup_logging
from crrg_clip.train.clip import CLIPSettings, train_clip

# `snakemake` is injected by Snakemake's script directive.
setup_logging(snakemake.log[0])
set_threads(snakemake.params.torch_threads)
settings = CLIPSettings.from_config(dict(snakemake.params.settings), text_model=snakemake.params.text_model,
                                    image_weights=snakemake.input.get("image_weights"))
result = train_clip(
    texts_path=snakemake.input.texts,
    backtranslations_path=snakemake.input.backtranslations,
    cache_images=snakemake.input.cache_images,
    cache_index=snakemake.input.cache_index,
    out_dir=snakemake.output.model,
    checkpoint_dir=snakemake.params.checkpoint_dir,
    settings=settings,
    seed=int(snakemake.wildcards.seed),
    device=pick_device(snakemake.params.device),
    text_source=snakemake.params.get("text_source") or snakemake.wildcards.text,
)
logging.getLogger("train_clip").info("done: %s", result)
