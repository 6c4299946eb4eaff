"""Where is the image signal lost? A linear probe of one RRG variant's raw detector region features
for is_abnormal and for the exact reference sentence (trained on a train split,
tested on the rrg_opt test split). usage: python probe_region_features.py RESULTS VARIANT [TRAIN_SUBSAMPLE [TEST_SUBSAMPLE]]"""
import sys
import numpy as np, pandas as pd, torch
from pathlib import Path
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.preprocessing import StandardScaler
from crrg_clip.data.region_dataset import Normalize, load_detector_data
from crrg_clip.models.detector import RegionDetector
from crrg_clip.region_features import extract_region_features
torch.set_num_threads(1)
root, variant = sys.argv[1], sys.argv[2]
det = RegionDetector.from_pretrained(f"{root}/rrg/{variant}/seed0/detector")
regions = pd.read_parquet(f"{root}/cache/mimic/regions.parquet"); regions["dicom_id"] = regions["dicom_id"].astype(str)
phr = regions.set_index(["dicom_id", "region_index"])["phrase"].to_dict()
def get(sub, split):
    d = load_detector_data(images_path=f"{root}/cache/mimic/images.npy", index_path=f"{root}/cache/mimic/index.parquet",
        regions_path=f"{root}/cache/mimic/regions.parquet", split_path=f"{root}/splits/{sub}.parquet", split=split,
        normalize=Normalize(det.config.normalize_mean, det.config.normalize_std))
    t = extract_region_features(det, d, batch_size=16, device="cpu", progress=False)
    ids = d.dicom_ids
    from crrg_clip.data.region_dataset import read_region_targets
    lab = read_region_targets(f"{root}/cache/mimic/regions.parquet", ids)
    phrases = np.array([[phr.get((i, r), "") or "" for r in range(29)] for i in ids], dtype=object)
    return dict(raw=t["features"].float().numpy(), det=t["detected"].bool().numpy(), abn=lab.is_abnormal, has=lab.has_sentence, phrases=phrases)
tr = get(sys.argv[3] if len(sys.argv) > 3 else "rrg_opt", "train")
te = get(sys.argv[4] if len(sys.argv) > 4 else "rrg_opt", "test")
print("detected", tr["det"].mean(), te["det"].mean())
X, y = tr["raw"][tr["det"]], tr["abn"][tr["det"]]; Xt, yt = te["raw"][te["det"]], te["abn"][te["det"]]
sc = StandardScaler().fit(X); clf = LogisticRegression(max_iter=3000).fit(sc.transform(X), y)
print(f"raw abnormal AUC train {roc_auc_score(y, clf.predict_proba(sc.transform(X))[:,1]):.3f} test {roc_auc_score(yt, clf.predict_proba(sc.transform(Xt))[:,1]):.3f} pos {y.sum()}/{len(y)}")
k, kt = tr["det"] & tr["has"], te["det"] & te["has"]
X, y, Xt, yt = tr["raw"][k], tr["phrases"][k], te["raw"][kt], te["phrases"][kt]
sc = StandardScaler().fit(X); clf = LogisticRegression(max_iter=3000).fit(sc.transform(X), y)
pt = clf.predict(sc.transform(Xt)); abn = te["abn"][kt]
print(f"raw exact-phrase acc train {(clf.predict(sc.transform(X))==y).mean():.3f} test {(pt==yt).mean():.3f}; on abnormal test phrases {(pt[abn]==yt[abn]).mean():.3f} (n={abn.sum()}); normal {(pt[~abn]==yt[~abn]).mean():.3f}")
