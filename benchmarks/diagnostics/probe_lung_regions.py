"""A linear probe of the detector's region features for is_abnormal, per region (whole lungs vs
zones). usage: python probe_lung_regions.py RESULTS [VARIANT]"""
import sys, pandas as pd, numpy as np
from safetensors.torch import load_file
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
root = sys.argv[1]; variant = sys.argv[2] if len(sys.argv) > 2 else "rrg_opt"
reg = pd.read_parquet(f"{root}/data/regions.parquet")
def load(split):
    t = load_file(f"{root}/rrg/{variant}/seed0/region_features/rrg_opt_{split}.safetensors")
    rows = pd.read_parquet(f"{root}/rrg/{variant}/seed0/region_features/rrg_opt_{split}.parquet")
    return t, rows
out = {}
for split in ("train", "test"):
    t, rows = load(split)
    f = t["features"].float().numpy(); det = t["detected"].numpy().astype(bool)
    lab = reg.pivot(index="dicom_id", columns="region_index", values="is_abnormal").loc[rows.dicom_id].to_numpy().astype(bool)
    out[split] = (f, det, lab)
for name, idx in [("right lung", 0), ("left lung", 8), ("right upper", 1), ("right lower", 3), ("cardiac", None)]:
    if idx is None:
        from crrg_clip.regions import REGION_INDEX; idx = REGION_INDEX["cardiac silhouette"]
    (ftr, dtr, ltr), (fte, dte, lte) = out["train"], out["test"]
    Xtr, ytr = ftr[dtr[:, idx], idx], ltr[dtr[:, idx], idx]
    Xte, yte = fte[dte[:, idx], idx], lte[dte[:, idx], idx]
    mu, sd = Xtr.mean(0), Xtr.std(0) + 1e-6
    clf = LogisticRegression(C=0.1, max_iter=2000).fit((Xtr - mu) / sd, ytr)
    p = clf.predict_proba((Xte - mu) / sd)[:, 1]
    print(f"{name:12s} train n={len(ytr)} pos={ytr.mean():.2f}  test n={len(yte)} pos={yte.mean():.2f} AUC={roc_auc_score(yte, p) if 0<yte.mean()<1 else float('nan'):.3f}")
