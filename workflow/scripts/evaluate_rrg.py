"""Adapter for rule evaluate_rrg: score one report system and seed into a metrics JSON."""
import logging
from pathlib import Path

from crrg_clip.evaluate.chexpert_labeler import default_labeler
from crrg_clip.evaluate.rrg import evaluate_rrg_system, write_json

logging.basicConfig(filename=snakemake.log[0], level=logging.INFO, format="%(asctime)s %(message)s")
inp, boot = snakemake.input, snakemake.params.bootstrap
labelers = [default_labeler()]
if inp.get("chexbert"):
    from crrg_clip.evaluate.chexbert import load_chexbert_labeler

    labelers.append(load_chexbert_labeler(inp.chexbert, bert_dir=snakemake.params.chexbert_bert_dir))
doc = evaluate_rrg_system(
    system=snakemake.wildcards.system,
    kind=snakemake.params.kind,
    seed=int(snakemake.wildcards.seed),
    reports_path=inp.reports,
    images_path=inp.images,
    split_path=inp.split,
    tokenization=snakemake.params.tokenization,
    resamples=boot["resamples"],
    bootstrap_seed=boot["seed"],
    confidence=boot["confidence"],
    bootstrap_unit=boot["unit"],
    cider_df=snakemake.params.cider_df,
    predictions_path=inp.get("predictions"),
    regions_path=inp.get("regions"),
    model_dirs=snakemake.params.model_dirs,
    upstream=[p for p in snakemake.params.upstream if Path(p).is_file()],
    command=snakemake.params.command,
    labelers=labelers,
)
logging.info("%s seed %s: %s", doc["system"], doc["seed"],
             {k: round(v["value"], 4) for k, v in doc["metrics"].items()})
if doc["reference_mismatches"]:
    logging.warning("%d reference(s) in %s differ from results/data/images.parquet FINDINGS; "
                    "scored against images.parquet", doc["reference_mismatches"], inp.reports)
write_json(doc, snakemake.output.metrics)
