"""Per region: how often RRG-opt's generated sentence equals the reference phrase on abnormal and
normal test regions, and a few whole-lung examples. usage: python region_sentences.py RESULTS"""
import sys, pandas as pd, numpy as np
root = sys.argv[1]
p = pd.read_parquet(f"{root}/rrg/rrg_opt/seed0/predictions_test.parquet")
print(p.columns.tolist())
reg = pd.read_parquet(f"{root}/data/regions.parquet")
m = p.merge(reg[["dicom_id","region_index","region","phrase","has_sentence","is_abnormal"]], on=["dicom_id","region_index"], how="left", suffixes=("","_ref"))
print(len(m))
m["gen"] = m["generated_sentence"].fillna("")
m["exact"] = m["gen"].str.strip() == m["phrase"].fillna("").str.strip()
ab = m[m.is_abnormal.astype(bool)]
print("abnormal ref regions", len(ab), "selected", ab.selected.mean(), "exact", ab.exact.mean())
g = ab.groupby("region").agg(n=("exact","size"), sel=("selected","mean"), exact=("exact","mean"))
print(g.sort_values("n", ascending=False).head(20))
nm = m[m.has_sentence.astype(bool) & ~m.is_abnormal.astype(bool)]
print("normal ref regions", len(nm), "selected", nm.selected.mean(), "exact", nm.exact.mean())
# examples on whole lung
for _, r in ab[ab.region.isin(["right lung","left lung"])].head(8).iterrows():
    print(r.region, "| REF:", r.phrase, "| GEN:", r.gen, "| sel", r.selected)
rep = pd.read_parquet(f"{root}/rrg/rrg_opt/seed0/reports_test.parquet"); print(rep.columns.tolist())
for _, r in rep.head(4).iterrows():
    print("GEN:", r.report); print("REF:", r.get("reference", "")); print()
