"""evaluate_probe: the test-id fingerprint that lets Table 2 pair two probes' bootstraps."""

import numpy as np
import pandas as pd

from crrg_clip.evaluate.bootstrap import ids_fingerprint
from crrg_clip.evaluate.probe import evaluate_probe


def write_case(tmp_path, name, order_seed, ids=None):
    rng = np.random.default_rng(0)
    rsna = pd.DataFrame({"patientId": [f"p{i:03d}" for i in range(30)], "label": [i % 3 == 0 for i in range(30)],
                         "split": ["train"] * 10 + ["test"] * 20})
    rsna["label"] = rsna["label"].astype("int64")
    rsna.to_parquet(tmp_path / "rsna.parquet", index=False)
    test = rsna[rsna["split"] == "test"]
    predictions = test[["patientId", "label"]].assign(prob=rng.random(len(test)))
    predictions = predictions.sample(frac=1, random_state=order_seed)  # files may list ids in any order
    path = tmp_path / f"{name}.parquet"
    predictions.to_parquet(path, index=False)
    return path, sorted(test["patientId"])


def score(tmp_path, path):
    return evaluate_probe(encoder="random_init", seed=0, predictions_path=str(path),
                          rsna_path=str(tmp_path / "rsna.parquet"), resamples=20, bootstrap_seed=0)


def test_fingerprint_is_the_sorted_test_ids_whatever_the_file_order(tmp_path):
    a, ids = write_case(tmp_path, "a", order_seed=1)
    b, _ = write_case(tmp_path, "b", order_seed=2)
    doc_a, doc_b = score(tmp_path, a), score(tmp_path, b)
    assert doc_a["bootstrap"]["ids_sha256"] == ids_fingerprint(ids)
    # same ids in another order: the same fingerprint, so the two bootstraps pair image by image
    assert doc_b["bootstrap"]["ids_sha256"] == doc_a["bootstrap"]["ids_sha256"]
    assert doc_a["bootstrap"]["ids_sha256"] != ids_fingerprint(ids[::-1])
    assert doc_a["n"] == len(ids)
