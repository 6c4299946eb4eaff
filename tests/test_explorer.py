"""The explorer page built from small fixture files: what it holds (systems, reports,
metrics, CE labels, images beside it, nothing external), and, in a real headless
Chromium, that choosing a filter and clicking a report shows the image with its regions."""

import json
import re
import shutil
import subprocess

import numpy as np
import pandas as pd
import pytest

from crrg_clip.explorer import Run, build_explorer
from crrg_clip.regions import NUM_REGIONS, REGIONS

SIZE = 96
IDS = ["d-halluc", "d-missed", "d-agree"]
GENERATED = {"d-halluc": "There is a large right pleural effusion.",
             "d-missed": "The lungs are clear.",
             "d-agree": "Mild cardiomegaly."}
REFERENCE = {"d-halluc": "No pleural effusion. The lungs are clear.",
             "d-missed": "Mild cardiomegaly.",
             "d-agree": "Mild cardiomegaly is seen."}


def _predictions():
    rows = []
    for d in IDS:
        for ri in range(NUM_REGIONS):
            detected = ri % 3 != 2
            selected = ri in (6, 24)
            x1, y1 = 5 + (ri % 6) * 12, 5 + (ri // 6) * 14
            rows.append({"dicom_id": d, "region_index": ri, "region": REGIONS[ri],
                         "x1": float(x1) if detected else 0.0, "y1": float(y1) if detected else 0.0,
                         "x2": float(x1 + 20) if detected else 0.0, "y2": float(y1 + 18) if detected else 0.0,
                         "detected": detected or selected, "selection_score": float(ri) / 10,
                         "selected": selected,
                         "generated_sentence": f"sentence of {REGIONS[ri]} in {d}." if selected else "",
                         "reference_sentence": "Mild cardiomegaly." if ri == 24 else ""})
    return pd.DataFrame(rows)


@pytest.fixture(scope="module")
def run_files(tmp_path_factory):
    root = tmp_path_factory.mktemp("run")
    rng = np.random.default_rng(0)
    images = (rng.random((4, SIZE, SIZE)) * 200).astype(np.uint8)  # a row not in the test set too
    np.save(root / "images.npy", images)
    pd.DataFrame({"dicom_id": ["other", *IDS], "row": [0, 1, 2, 3]}).to_parquet(root / "index.parquet")
    _predictions().to_parquet(root / "predictions.parquet")
    pd.DataFrame({"dicom_id": IDS, "report": [GENERATED[d] for d in IDS],
                  "reference": [REFERENCE[d] for d in IDS]}).to_parquet(root / "reports.parquet")
    pd.DataFrame({"dicom_id": IDS, "report": ["The lungs are clear."] * 3}).to_parquet(root / "baseline.parquet")
    (root / "metrics.json").write_text(json.dumps({"per_report": {
        "dicom_id": IDS, "ROUGEL": [0.2, 0.9, 0.5], "CIDER": [0.1, 3.0, 1.0], "CE_F1": [0.0, 0.5, 1.0],
        "note": ["a", "b", "c"]}}))  # a non-numeric list is not a metric
    (root / "baseline.json").write_text(json.dumps({"per_report": {"dicom_id": IDS, "ROUGEL": [0.3, 0.3, 0.3]}}))
    return root


@pytest.fixture(scope="module")
def page(run_files, tmp_path_factory):
    out = tmp_path_factory.mktemp("explorer") / "explorer"
    runs = [Run("rrg_opt", 0, str(run_files / "reports.parquet"), str(run_files / "predictions.parquet"),
                str(run_files / "metrics.json")),
            Run("rrg_opt-most_frequent", 0, str(run_files / "baseline.parquet"), None,
                str(run_files / "baseline.json"))]
    summary = build_explorer(out, runs, cache_images_path=str(run_files / "images.npy"),
                             cache_index_path=str(run_files / "index.parquet"), references=REFERENCE)
    return out, summary


def _data(index_html: str) -> dict:
    match = re.search(r"window\.EXPLORER = (\{.*\});\n</script>", index_html, re.S)
    return json.loads(match.group(1).replace("<\\/", "</"))


def test_page_lists_every_report_of_every_system_with_metrics_and_ce(page):
    out, summary = page
    text = (out / "index.html").read_text()
    data = _data(text)
    assert summary["entries"] == 6 and summary["images"] == 3
    assert [s["label"] for s in data["systems"]] == ["rrg_opt seed0", "rrg_opt-most_frequent seed0"]
    assert data["metrics"] == ["ROUGEL", "CIDER", "CE_F1"]  # numeric per-report lists, extras included
    by_key = {(e["s"], e["id"]): e for e in data["entries"]}
    first = by_key[(0, "d-halluc")]
    assert first["gen"] == GENERATED["d-halluc"] and first["ref"] == REFERENCE["d-halluc"]
    assert first["m"] == {"ROUGEL": 0.2, "CIDER": 0.1, "CE_F1": 0.0}
    assert by_key[(1, "d-halluc")]["ref"] == REFERENCE["d-halluc"]  # baseline: reference from FINDINGS
    assert by_key[(1, "d-agree")]["r"] == []  # a whole-report system has no regions
    shown = [r for r in first["r"] if r[2]]
    assert [REGIONS[r[0]] for r in shown] == ["right costophrenic angle", "cardiac silhouette"]
    assert shown[1][9] == "Mild cardiomegaly." and shown[1][8].startswith("sentence of cardiac silhouette")


def test_ce_labels_mark_the_hallucinated_and_missed_finding(page):
    out, _ = page
    data = _data((out / "index.html").read_text())
    obs = data["observations"]
    assert len(obs) == 14
    by_key = {(e["s"], e["id"]): e for e in data["entries"]}
    effusion, cardio = obs.index("Pleural Effusion"), obs.index("Cardiomegaly")
    halluc, missed = by_key[(0, "d-halluc")], by_key[(0, "d-missed")]
    assert halluc["cg"][effusion] == 1.0 and halluc["cr"][effusion] != 1.0
    assert missed["cr"][cardio] == 1.0 and missed["cg"][cardio] != 1.0


def test_page_is_self_contained(page):
    out, _ = page
    text = (out / "index.html").read_text()
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", text)  # no CDN, no server
    data = _data(text)
    for ref in data["images"].values():
        assert (out / ref["src"]).is_file() and not ref["src"].startswith("/")
        assert ref["size"] == SIZE
    assert sorted(p.name for p in (out / "images").iterdir()) == ["0.png", "1.png", "2.png"]  # test images only
    assert "</script>" not in re.search(r"window\.EXPLORER = (.*?);\n</script>", text, re.S).group(1)


def test_rebuild_replaces_the_folder(page, run_files):
    out, _ = page
    (out / "images" / "stale.png").write_bytes(b"x")
    build_explorer(out, [Run("rrg_opt", 0, str(run_files / "reports.parquet"))],
                   cache_images_path=str(run_files / "images.npy"), cache_index_path=str(run_files / "index.parquet"))
    assert not (out / "images" / "stale.png").exists()
    data = _data((out / "index.html").read_text())
    assert data["metrics"] == [] and all(e["r"] == [] for e in data["entries"])


# ----------------------------------------------------------------- a real browser

DRIVER = """<!doctype html><html><body style="margin:0">
<iframe id="page" src="explorer/index.html" style="width:1400px;height:1000px;border:0"></iframe>
<pre id="result">pending</pre>
<script>
// choose a filter and click a report as a user would, then record what the page shows
const frame = document.getElementById("page");
frame.addEventListener("load", () => {
  const doc = frame.contentDocument;
  const finding = doc.getElementById("f-finding");
  finding.value = "hallucinated";
  finding.dispatchEvent(new Event("change"));
  const rows = doc.querySelectorAll("#list tr.entry");
  rows[0].click();
  const detail = doc.getElementById("detail");
  const img = doc.querySelector("#viewer img");
  document.getElementById("result").textContent = JSON.stringify({
    ready: doc.body.dataset.ready, shown: doc.body.dataset.shown, rows: rows.length,
    open: detail.dataset.open, hash: frame.contentWindow.location.hash,
    selectedBoxes: doc.querySelectorAll("#viewer rect.sel").length,
    detectedBoxes: doc.querySelectorAll("#viewer rect.det").length,
    regionRows: Array.from(doc.querySelectorAll("#regions tbody tr")).map((r) => r.textContent),
    imageLoaded: !!img && img.complete && img.naturalWidth > 0,
    viewer: doc.getElementById("viewer").getBoundingClientRect().toJSON(),
  });
});
</script></body></html>
"""


def _chromium():
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if shutil.which(name):
            return shutil.which(name)
    return None


def _run_chromium(binary, *args, timeout=120):
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--allow-file-access-from-files",
             "--hide-scrollbars", "--window-size=1400,1000", "--virtual-time-budget=5000"]
    return subprocess.run([binary, *flags, *args], capture_output=True, text=True, timeout=timeout)


@pytest.mark.browser
def test_in_headless_chromium_a_filter_and_a_click_show_the_image_and_regions(run_files, tmp_path):
    binary = _chromium()
    if binary is None:
        pytest.skip("chromium is not installed (make test-browser installs it: apt-get install chromium)")
    runs = [Run("rrg_opt", 0, str(run_files / "reports.parquet"), str(run_files / "predictions.parquet"),
                str(run_files / "metrics.json")),
            Run("rrg_opt-most_frequent", 0, str(run_files / "baseline.parquet"), None,
                str(run_files / "baseline.json"))]
    build_explorer(tmp_path / "explorer", runs, cache_images_path=str(run_files / "images.npy"),
                   cache_index_path=str(run_files / "index.parquet"), references=REFERENCE)
    driver = tmp_path / "driver.html"
    driver.write_text(DRIVER)
    dom = _run_chromium(binary, "--dump-dom", driver.as_uri())
    assert dom.returncode == 0, dom.stderr[-2000:]
    found = re.search(r'<pre id="result">(.*?)</pre>', dom.stdout, re.S)
    assert found and found.group(1) != "pending", dom.stdout[-2000:]
    result = json.loads(found.group(1).replace("&quot;", '"').replace("&amp;", "&"))
    assert result["ready"] == "1"
    # hallucinated findings: only rrg_opt's d-halluc (effusion) and the baseline rows whose reference is
    # positive for nothing the baseline says... the baseline says "lungs are clear": no finding to invent
    assert result["shown"] == "1" and result["rows"] == 1
    assert result["open"] == "0:d-halluc" and "finding=hallucinated" in result["hash"]
    assert result["selectedBoxes"] == 2 and result["detectedBoxes"] > 10
    assert any("cardiac silhouette" in r and "Mild cardiomegaly." in r for r in result["regionRows"])
    assert result["imageLoaded"]

    shot = tmp_path / "shot.png"
    snap = _run_chromium(binary, f"--screenshot={shot}", driver.as_uri())
    assert snap.returncode == 0 and shot.is_file(), snap.stderr[-2000:]
    from PIL import Image

    pixels = np.asarray(Image.open(shot).convert("L"), dtype=float)  # (H, W)
    assert pixels.std() > 10  # not a blank page
    v = result["viewer"]
    panel = pixels[int(v["top"]):int(v["bottom"]), int(v["left"]):int(v["right"])]
    assert panel.size > 100 * 100 and panel.std() > 10  # the image panel shows an image and boxes
