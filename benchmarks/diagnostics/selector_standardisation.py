"""The region selector on raw vs standardised detector features, and its epochs, on the
validation split only (per lung zone: AUC of the selection logit for is_abnormal, and how
many abnormal zones pass the valid-tuned threshold). Unstandardised = the buffers left at
identity. usage: python selector_standardisation.py DEMO_ROOT (a clone with a finished demo)"""
import sys, tempfile, time

import torch
from sklearn.metrics import roc_auc_score

from crrg_clip.models.selector import RegionSelector, SelectorConfig
from crrg_clip.regions import REGIONS
from crrg_clip.settings import Schedule
from crrg_clip.train.selector import (SelectorTrainer, load_selector_data, selection_metrics, selection_outputs,
                                      tune_selection_threshold)

torch.set_num_threads(2)
root = sys.argv[1]
base = f"{root}/results/rrg/rrg_opt/seed0/region_features/rrg_opt_"
regions = f"{root}/results/cache/mimic/regions.parquet"
train = load_selector_data(base + "train.safetensors", regions, base + "train.parquet")
valid = load_selector_data(base + "valid.safetensors", regions, base + "valid.parquet")
zones = [i for i, name in enumerate(REGIONS) if "zone" in name or name.endswith(" lung")]
for standardise, epochs in [(False, 20), (True, 20), (True, 60), (True, 150)]:
    torch.manual_seed(0)
    model = RegionSelector(SelectorConfig(in_channels=train.features.shape[-1], region_feature_dim=128,
                                          selection_pos_weight=2.0))
    if standardise:
        model.fit_standardization(train.features, train.detected)
    t0 = time.time()
    with tempfile.TemporaryDirectory() as d:  # the demo's rrg_opt selector schedule, but the epochs
        SelectorTrainer(model, train, valid, Schedule(epochs=epochs, batch_size=16, lr=1e-3, factor=0.5),
                        device=torch.device("cpu"), seed=0, progress=False).fit(d, f"{d}/metrics.tsv")
    seconds = time.time() - t0
    model.config.selection_threshold = tune_selection_threshold(model, valid, "cpu")
    metrics, out = selection_metrics(model, valid, "cpu"), selection_outputs(model, valid, "cpu")
    cells = []
    for r in zones:
        found, abnormal = valid.detected[:, r], valid.is_abnormal[:, r]
        if abnormal[found].any() and not abnormal[found].all():
            auc = roc_auc_score(abnormal[found].numpy(), out["logits"][:, r][found].numpy())
            cells.append(f"{REGIONS[r].replace(' lung zone', '')}: {auc:.2f} "
                         f"({int(out['selected'][:, r][abnormal].sum())}/{int(abnormal.sum())})")
    print(f"standardised={standardise} epochs={epochs} ({seconds:.0f} s): valid selection "
          f"F1 {metrics['f1']:.3f} P {metrics['precision']:.3f} R {metrics['recall']:.3f}")
    print("   ", "; ".join(cells))
