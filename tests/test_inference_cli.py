"""`crrg-clip report` and `crrg-clip classify` on tiny model folders built here (nothing is
trained): a JPG, a PNG, two DICOMs (JPEG-compressed MONOCHROME2; 16-bit MONOCHROME1 with a
VOI window) and unreadable files. Checks the cache's preprocessing is used as is, the
boxes come back in original pixels, one line per failed file and the exit statuses."""

import io
import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from crrg_clip.cli import main
from crrg_clip.data.cache import build_cache
from crrg_clip.data.images import letterbox_geometry, load_dicom, map_boxes
from crrg_clip.inference.inputs import expand_inputs, load_letterboxed, output_names
from crrg_clip.inference.outputs import original_boxes
from crrg_clip.models.clip import ImageEncoder
from crrg_clip.models.demo_gpt2 import build_demo_gpt2, save_demo_gpt2
from crrg_clip.models.detector import DetectorConfig, build_detector
from crrg_clip.models.generator import build_generator
from crrg_clip.models.probe import LinearProbe
from crrg_clip.models.selector import RegionSelector, SelectorConfig
from crrg_clip.regions import NUM_REGIONS

pytestmark = pytest.mark.usefixtures("one_torch_thread")

CACHE = 64  # the tiny detector's cache side
SENTENCES = ["the lungs are clear.", "no pleural effusion.", "heart size is normal.",
             "there is a small left pleural effusion.", "mild cardiomegaly."]


def _chest(height, width, seed):
    """A grey radiograph-like array: dark background, two bright 'lungs' and noise."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:height, :width]
    image = 40 + 20 * rng.random((height, width))
    for cx in (0.3, 0.7):
        image[((xx / width - cx) / 0.15) ** 2 + ((yy / height - 0.5) / 0.35) ** 2 < 1] += 150
    return np.clip(image, 0, 255).astype(np.uint8)


def _dicom_monochrome1(path, pixels16):
    """Uncompressed 12-bit MONOCHROME1 with a VOI window: the scanner-export case."""
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, SecondaryCaptureImageStorage, generate_uid

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = SecondaryCaptureImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = SecondaryCaptureImageStorage
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.Modality = "CR"
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME1"
    ds.Rows, ds.Columns = pixels16.shape
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
    ds.WindowCenter, ds.WindowWidth = 2048, 4096
    ds.PixelData = pixels16.astype(np.uint16).tobytes()
    ds.save_as(path, enforce_file_format=True)


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    from crrg_clip.data.synthetic.rsna import RsnaImage, dicom_bytes

    folder = tmp_path_factory.mktemp("images")
    Image.fromarray(_chest(90, 120, 0)).save(folder / "wide.jpg", quality=92)  # landscape: pad top/bottom
    Image.fromarray(_chest(150, 100, 1)).convert("RGB").save(folder / "tall.png")  # RGB PNG -> grey
    meta = RsnaImage("p1", (), "Normal", "PA", "F", 50)
    (folder / "scanner.dcm").write_bytes(dicom_bytes(meta, _chest(80, 80, 2)))
    bright = _chest(100, 80, 3).astype(np.uint16) * 16  # 12-bit; MONOCHROME1: high = dark
    _dicom_monochrome1(folder / "mono1", 4095 - bright)  # no suffix: found by its DICM magic
    (folder / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0" + b"\x00" * 40)  # a truncated JPEG
    (folder / "notes.txt").write_text("not an image\n")
    return folder


def _tiny_rrg(root, *, with_cache_record=True, abnormal=True):
    torch.manual_seed(0)
    config = DetectorConfig(backbone="resnet18", image_size=CACHE, anchor_sizes=[8, 16, 32],
                            anchor_ratios=[0.5, 1.0, 2.0], roi_output_size=2, rpn_pre_nms_top_n=50,
                            rpn_post_nms_top_n=50, detection_min_score=0.0)
    extra = {"image_cache": {"size": CACHE, "jpeg_draft": True}} if with_cache_record else {}
    build_detector(config).save_pretrained(root / "detector", extra=extra)
    selector = RegionSelector(SelectorConfig(in_channels=512, region_feature_dim=8, hidden=[8, 4],
                                             abnormal_classifier=abnormal, selection_threshold=0.0))
    selector.save_pretrained(root / "selector")
    gpt2, tokenizer = build_demo_gpt2(SENTENCES * 4, vocab_size=300, n_layer=1, n_embd=16, n_head=2,
                                      n_positions=32, seed=0)
    save_demo_gpt2(root / "gpt2", gpt2, tokenizer)
    generator = build_generator(str(root / "gpt2"), feature_dim=8, hidden_dim=8)
    generator.save_pretrained(root / "generator", extra={"max_sentence_tokens": 6})
    (root / "reports_test.run.json").write_text(json.dumps({"settings": {
        "num_beams": 1, "max_new_tokens": 6, "similarity": "token_f1", "threshold": 0.9}}))
    return root


@pytest.fixture(scope="module")
def rrg_folder(tmp_path_factory):
    return _tiny_rrg(tmp_path_factory.mktemp("rrg_opt") / "seed0")


@pytest.fixture(scope="module")
def probe_folder(tmp_path_factory):
    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("probe") / "seed0"
    probe = LinearProbe(ImageEncoder("resnet18"))
    probe.save_pretrained(folder, {"encoder": "random_init", "image_size": 32,
                                   "normalize": {"mean": 0.471, "std": 0.302}, "image_cache": {"size": 48}})
    return folder


@pytest.fixture(scope="module")
def report_run(images, rrg_folder, tmp_path_factory):
    out = tmp_path_factory.mktemp("reports")
    stdout, stderr = io.StringIO(), io.StringIO()
    from crrg_clip.inference.commands import report_images

    status = report_images([str(images)], model=str(rrg_folder), out=str(out), device="cpu", batch_size=2,
                           stdout=stdout, stderr=stderr)
    return {"status": status, "out": out, "stdout": stdout.getvalue(), "stderr": stderr.getvalue()}


GOOD = ("wide", "tall", "scanner", "mono1")


def test_directory_expansion_sniffs_kinds_and_skips_other_files(images):
    paths, failures = expand_inputs([str(images), str(images / "wide.jpg"), str(images / "nothere.png"),
                                     str(images / "*.dcm")])
    names = [p.name for p in paths]
    assert sorted(names) == ["broken.jpg", "mono1", "scanner.dcm", "tall.png", "wide.jpg"]  # once each, no .txt
    assert [f.line() for f in failures] == [f"{images / 'nothere.png'}: file not found"]
    assert output_names([images / "a.jpg", images / "x" / "a.png", images / "a-2.dcm"]) == ["a", "a-2", "a-2-2"]


def test_decoding_is_the_image_cache_row_byte_for_byte(images, tmp_path):
    paths = [images / "wide.jpg", images / "tall.png"]
    geometry = build_cache(paths, tmp_path / "images.npy", CACHE, kind="jpeg", draft=True)
    cache = np.load(tmp_path / "images.npy")
    for row, path in enumerate(paths):
        canvas, geo = load_letterboxed(path, CACHE, jpeg_draft=True)
        assert np.array_equal(canvas, cache[row])
        assert (geo.scale, geo.pad_x, geo.pad_y) == tuple(geometry.loc[row, ["scale", "pad_x", "pad_y"]])
    dicoms = [images / "scanner.dcm", images / "mono1"]
    build_cache(dicoms, tmp_path / "rsna.npy", CACHE, kind="dicom")
    rsna = np.load(tmp_path / "rsna.npy")
    for row, path in enumerate(dicoms):
        assert np.array_equal(load_letterboxed(path, CACHE, jpeg_draft=True)[0], rsna[row])


def test_monochrome1_is_inverted_so_the_lungs_stay_bright(images):
    pixels = load_dicom(images / "mono1")  # (H, W)
    reference = _chest(100, 80, 3)
    lungs = reference > 150
    assert pixels[lungs].mean() > pixels[~lungs].mean() + 100  # inverted back (air black)
    assert np.corrcoef(pixels.ravel().astype(float), reference.ravel().astype(float))[0, 1] > 0.99


def test_boxes_round_trip_between_original_and_cache_pixels():
    geometry = letterbox_geometry(120, 90, CACHE)
    original = np.array([[10.0, 5.0, 60.0, 80.0], [0.0, 0.0, 120.0, 90.0]])
    cache = map_boxes(original, geometry.scale, geometry.pad_x, geometry.pad_y)
    rows = pd.DataFrame(cache, columns=["x1", "y1", "x2", "y2"])
    assert np.allclose(original_boxes(rows, geometry), original)
    assert geometry.pad_y > 0 and geometry.pad_x == 0  # a landscape image is padded top and bottom


def test_report_writes_three_files_per_readable_image_and_one_line_per_failure(report_run, images):
    assert report_run["status"] == 1
    lines = [line for line in report_run["stderr"].splitlines() if not line.startswith("note:")]
    assert lines == [f"{(images / 'broken.jpg').resolve()}: cannot decode image (image file is truncated)"] \
        or (len(lines) == 1 and lines[0].startswith(f"{(images / 'broken.jpg').resolve()}: "))
    assert "Traceback" not in report_run["stderr"]
    out = report_run["out"]
    for name in GOOD:
        for suffix in (".report.txt", ".regions.json", ".png"):
            assert (out / f"{name}{suffix}").is_file(), f"{name}{suffix} missing"
    assert not any(p.name.startswith("broken") for p in out.iterdir())
    assert report_run["stdout"].count("report:") == len(GOOD)


def test_regions_json_has_29_regions_in_original_pixels(report_run, images):
    for name, (width, height) in {"wide": (120, 90), "tall": (100, 150), "scanner": (80, 80),
                                  "mono1": (80, 100)}.items():
        doc = json.loads((report_run["out"] / f"{name}.regions.json").read_text())
        assert (doc["width"], doc["height"]) == (width, height)
        regions = doc["regions"]
        assert [r["region_index"] for r in regions] == list(range(NUM_REGIONS))
        assert doc["decoding"]["num_beams"] == 1 and "reports_test.run.json" in doc["decoding"]["source"]
        for r in regions:
            assert set(r) >= {"region", "box", "detected", "selection_score", "selected", "sentence", "abnormal",
                              "ce_labels"}
            if r["detected"]:
                x1, y1, x2, y2 = r["box"]
                assert 0 <= x1 <= x2 <= width and 0 <= y1 <= y2 <= height
                assert isinstance(r["abnormal"], bool)
            else:
                assert r["box"] is None and not r["selected"]
            assert bool(r["sentence"]) <= r["selected"]  # only selected regions get a sentence
        assert any(r["selected"] for r in regions)  # every image gets a report
        report = (report_run["out"] / f"{name}.report.txt").read_text().strip()
        assert report == doc["report"]


def test_report_ce_labels_follow_the_labeler_api(report_run):
    try:
        from crrg_clip.evaluate.chexpert_labeler import CHEXPERT_OBSERVATIONS
    except ImportError:
        pytest.skip("crrg_clip.evaluate.chexpert_labeler is not written yet: only the CE-label part is skipped")
    doc = json.loads((report_run["out"] / "wide.regions.json").read_text())
    assert set(doc["ce_labels"]) == set(CHEXPERT_OBSERVATIONS)
    assert all(v in (1.0, 0.0, -1.0, None) for v in doc["ce_labels"].values())
    for r in doc["regions"]:
        assert (r["ce_labels"] is None) == (not r["sentence"])


def test_annotated_png_is_not_blank(report_run):
    image = np.asarray(Image.open(report_run["out"] / "wide.png").convert("L"), dtype=float)
    assert image.shape[0] > 200 and image.std() > 5


def test_report_batches_give_the_same_reports_as_one_at_a_time(report_run, images, rrg_folder, tmp_path):
    from crrg_clip.inference.commands import report_images

    status = report_images([str(images / "wide.jpg")], model=str(rrg_folder), out=str(tmp_path), device="cpu",
                           batch_size=1, stdout=io.StringIO(), stderr=io.StringIO())
    assert status == 0
    alone = json.loads((tmp_path / "wide.regions.json").read_text())
    batched = json.loads((report_run["out"] / "wide.regions.json").read_text())
    assert alone["report"] == batched["report"]
    assert [r["selected"] for r in alone["regions"]] == [r["selected"] for r in batched["regions"]]


def test_old_detector_folder_falls_back_with_a_note(images, tmp_path, capsys):
    old = _tiny_rrg(tmp_path / "old", with_cache_record=False, abnormal=False)
    status = main(["report", str(images / "wide.jpg"), "--model", str(old), "--out", str(tmp_path / "o"),
                   "--device", "cpu"])
    err = capsys.readouterr().err
    assert status == 0
    assert "no image_cache.size" in err and "image_size 64" in err
    doc = json.loads((tmp_path / "o" / "wide.regions.json").read_text())
    assert all(r["abnormal"] is None for r in doc["regions"])  # no abnormal head: no flag


@pytest.mark.parametrize("argv, message", [
    (["report", "x.jpg", "--model", "/nonexistent/model"], "no such directory"),
    (["report", "x.jpg", "--model", "."], "not an RRG model folder"),
    (["classify", "x.jpg", "--probe", "/nonexistent"], "no such directory"),
])
def test_user_errors_are_one_line_and_exit_2(argv, message, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("crrg-clip: error:") and message in err[0]


def test_classify_wrong_folder_kind_is_a_user_error(rrg_folder, capsys):
    assert main(["classify", "x.jpg", "--probe", str(rrg_folder / "detector")]) == 2
    assert "not a probe folder" in capsys.readouterr().err


def test_classify_prints_probabilities_and_reports_failures(images, probe_folder, tmp_path, capsys):
    csv = tmp_path / "probs.csv"
    status = main(["classify", str(images / "wide.jpg"), str(images / "tall.png"), str(images / "scanner.dcm"),
                   str(images / "mono1"), str(images / "notes.txt"), "--probe", str(probe_folder),
                   "--out", str(csv), "--device", "cpu"])
    captured = capsys.readouterr()
    assert status == 1
    assert captured.err.strip() == f"{(images / 'notes.txt').resolve()}: unsupported file type " \
                                   "(expected a JPEG, PNG or DICOM file)"
    table = pd.read_csv(io.StringIO(captured.out), sep="\t")
    assert list(table.columns) == ["image", "pneumonia_probability", "prediction"]
    assert len(table) == 4 and table["pneumonia_probability"].between(0, 1).all()
    assert pd.read_csv(csv)["pneumonia_probability"].round(4).tolist() == table["pneumonia_probability"].tolist()


IMAGENET = {"kind": "imagenet", "mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]}


@pytest.mark.parametrize("normalize", [None, IMAGENET], ids=["grey", "imagenet"])
def test_classify_matches_the_probe_on_its_cache_view(images, probe_folder, tmp_path, capsys, normalize):
    """The probability is the probe's on the cache row of that image (eval view, stored normalisation)."""
    from crrg_clip.train.probe import eval_view

    folder = probe_folder
    if normalize:  # the same probe, stored as trained with per-channel ImageNet normalisation
        folder = tmp_path / "probe_rgb"
        probe = LinearProbe.from_pretrained(probe_folder)
        probe.save_pretrained(folder, {**{k: v for k, v in probe.folder_config.items()
                                          if k not in ("kind", "image_encoder", "feature_dim")},
                                       "normalize": normalize})
    build_cache([images / "scanner.dcm"], tmp_path / "rsna.npy", 48, kind="dicom")
    row = np.load(tmp_path / "rsna.npy")[0]
    probe = LinearProbe.from_pretrained(folder)
    view = eval_view(row, 32)  # (1, 32, 32)
    if normalize:
        mean, std = torch.tensor(IMAGENET["mean"]).view(3, 1, 1), torch.tensor(IMAGENET["std"]).view(3, 1, 1)
        view = (view.expand(3, -1, -1) - mean) / std
    else:
        view = (view - 0.471) / 0.302
    expected = float(probe.predict_proba(view[None]))
    assert main(["classify", str(images / "scanner.dcm"), "--probe", str(folder), "--device", "cpu"]) == 0
    printed = float(capsys.readouterr().out.splitlines()[1].split("\t")[1])
    assert printed == pytest.approx(expected, abs=1e-4)


def test_help_documents_both_commands():
    for command, words in (("report", ["--model", "--out", "--device", "regions.json", "original image",
                                       "MONOCHROME1", "Exit status"]),
                           ("classify", ["--probe", "--out", "pneumonia_probability", "Exit status"])):
        result = subprocess.run([sys.executable, "-m", "crrg_clip", command, "--help"], capture_output=True,
                                text=True, check=True)
        text = " ".join(result.stdout.split())
        for word in words:
            assert word in text, f"{command} --help lacks {word!r}"


def test_a_trained_probe_records_its_cache_and_classify_reproduces_its_test_predictions(tmp_path, capsys):
    """train_probe (one epoch) -> config.json image_cache.size; the test images, written as
    lossless PNGs of the cache rows, get exactly the probabilities of predictions_test."""
    import dataclasses

    from crrg_clip.train.probe import train_probe
    from test_settings import default_settings

    rng = np.random.default_rng(0)
    n, size = 12, 40
    images = (rng.random((n, size, size)) * 200).astype(np.uint8)
    split = ["train"] * 6 + ["valid"] * 3 + ["test"] * 3
    index = pd.DataFrame({"patientId": [f"p{i}" for i in range(n)], "row": range(n), "label": [i % 2 for i in range(n)],
                          "split": split, "in_train_subset": [True] * n})
    np.save(tmp_path / "images.npy", images)
    index.to_parquet(tmp_path / "index.parquet", index=False)
    out = tmp_path / "probe"
    settings = dataclasses.replace(default_settings("probe"), epochs=1, batch_size=4, image_size=32, arch="resnet18")
    train_probe(settings, {"cache_images": tmp_path / "images.npy", "cache_index": tmp_path / "index.parquet"},
                {"predictions": out / "predictions_test.parquet"}, encoder="random_init", device=torch.device("cpu"),
                seed=0, checkpoint_dir=tmp_path / "ckpt", progress=False)
    assert json.loads((out / "config.json").read_text())["image_cache"] == {"size": size}
    expected = pd.read_parquet(out / "predictions_test.parquet")
    for pid in expected["patientId"]:
        Image.fromarray(images[int(pid[1:])]).save(tmp_path / f"{pid}.png")
    assert main(["classify", *[str(tmp_path / f"{p}.png") for p in expected["patientId"]], "--probe", str(out),
                 "--device", "cpu"]) == 0
    captured = capsys.readouterr()
    assert "note:" not in captured.err  # the folder records everything classify needs
    table = pd.read_csv(io.StringIO(captured.out), sep="\t")
    assert table["pneumonia_probability"].tolist() == pytest.approx(expected["prob"].round(4).tolist(), abs=1e-4)


def test_an_empty_argument_is_a_failure_not_the_working_directory(tmp_path, monkeypatch):
    from crrg_clip.inference.inputs import expand_inputs

    monkeypatch.chdir(tmp_path)
    (tmp_path / "scan.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    files, failures = expand_inputs([""])
    assert files == [] and len(failures) == 1 and "empty file name" in failures[0].line()
