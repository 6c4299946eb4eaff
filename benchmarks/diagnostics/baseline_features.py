"""Do a frozen ResNet's pooled 3x3 features carry the findings S&T / AdaAtt must write, and at what
scale? usage (repository root): python benchmarks/diagnostics/baseline_features.py RESULTS"""
import torch, numpy as np, pandas as pd, dataclasses
from crrg_clip.config import load_config
from crrg_clip.settings import stage_settings
import crrg_clip.train.report_baseline as RB
from crrg_clip.data.region_dataset import open_image_cache
from crrg_clip.models.detector import RegionDetector
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import cross_val_score
import sys
root = sys.argv[1]  # a finished demo's results/
s = dataclasses.replace(stage_settings(load_config("config/config.yaml"), "report_baseline", baseline="adaatt"), image_size=128)
tr = RB.load_split(images_table=pd.read_parquet(f"{root}/data/images.parquet"), splits=pd.read_parquet(f"{root}/splits/rrg_opt.parquet"),
    cache=open_image_cache(f"{root}/cache/mimic/images.npy"), index_path=f"{root}/cache/mimic/index.parquet", split="train",
    image_size=128, normalize=s.normalize, augment=None, seed=0)
m = RB.build_model(s, 100, 0)
for name in ["random", "trunk"]:
    if name == "trunk":
        det = RegionDetector.from_pretrained(f"{root}/rrg/rrg_opt/seed0/detector")
        print(m.encoder.trunk.load_state_dict(det.frcnn.backbone.state_dict()))
    f = RB.encode_all(m, tr.images, len(tr.dicom_ids), torch.device("cpu"))  # (N, R, C)
    x = f.flatten(1).numpy()
    print(name, f.shape, "mean", x.mean(), "std across images (mean over dims)", x.std(0).mean(), "abs mean", np.abs(x).mean())
    for word in ["cardiomegaly|heart size", "effusion is|effusion with", "opacity"]:
        import re
        y = np.array([bool(re.search(word, r)) for r in tr.reports])
        xs = (x - x.mean(0)) / (x.std(0) + 1e-6)
        print("  ", word, y.mean().round(2), "cv AUC", cross_val_score(LogisticRegression(C=0.1, max_iter=3000), xs, y, cv=4, scoring="roc_auc").mean().round(3))
