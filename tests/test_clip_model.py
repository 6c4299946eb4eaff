"""R-CLIP model: shapes, L2 norm, [SEP] pooling, save/load; the demo BERT builder."""

import torch
import pytest

from crrg_clip.models.clip import CLIPModel, ImageEncoder, build_clip, load_clip_image_encoder, sep_positions
from crrg_clip.models.demo_bert import build_demo_bert

CORPUS = [
    "The lungs are clear. No pleural effusion or pneumothorax.",
    "Heart size is normal. There is a small left pleural effusion.",
    "Right lower lobe opacity concerning for pneumonia.",
    "Mild cardiomegaly. No focal consolidation.",
] * 5


@pytest.fixture(scope="module")
def bert_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("bert")
    build_demo_bert(CORPUS, out, vocab_size=120,
                    bert={"num_hidden_layers": 1, "hidden_size": 16, "num_attention_heads": 2,
                          "intermediate_size": 32}, seed=0)
    return out


@pytest.fixture(scope="module")
def clip(bert_dir):
    torch.manual_seed(0)
    return build_clip(image_encoder="resnet18", image_weights=None, text_model=bert_dir, projection_dim=8,
                      temperature_init=0.07)


def test_demo_bert_loads_like_from_pretrained_and_is_cased(bert_dir):
    from transformers import AutoTokenizer, BertModel

    tok = AutoTokenizer.from_pretrained(str(bert_dir))
    model = BertModel.from_pretrained(str(bert_dir), add_pooling_layer=False)
    enc = tok(["The lungs are clear."])
    ids = enc["input_ids"][0]
    assert ids[0] == tok.cls_token_id and ids[-1] == tok.sep_token_id
    assert tok.decode(ids, skip_special_tokens=True).startswith("The lungs")  # cased, like Bio_ClinicalBERT
    assert model.config.hidden_size == 16 and model.config.vocab_size == len(tok)


def test_shapes_and_unit_norm(clip):
    model, tok = clip
    model.eval()
    x = torch.rand(3, 1, 64, 64)
    t = tok(CORPUS[:3], padding=True, return_tensors="pt")
    text = {"input_ids": t["input_ids"], "attention_mask": t["attention_mask"]}
    out = model(x, x.flip(-1), text, text)
    for key in ("image1", "image2", "text1", "text2"):
        assert out[key].shape == (3, 8)
        assert torch.allclose(out[key].norm(dim=-1), torch.ones(3), atol=1e-5)
    assert float(out["logit_scale"].detach()) == pytest.approx(1 / 0.07, rel=1e-4)
    assert ImageEncoder("resnet18")(x).shape == (3, 512)


def test_sep_pooling_picks_the_sep_token(clip):
    model, tok = clip
    model.eval()
    t = tok(["Heart size is normal.", "Right lower lobe opacity concerning for pneumonia."], padding=True,
            return_tensors="pt")
    ids, mask = t["input_ids"], t["attention_mask"]
    pos = sep_positions(ids, tok.sep_token_id)
    assert pos.tolist() == (mask.sum(1) - 1).tolist()  # the last real token, before the padding
    with torch.no_grad():
        hidden = model.text_encoder(input_ids=ids, attention_mask=mask).last_hidden_state
        expected = torch.nn.functional.normalize(model.text_projection(hidden[0, pos[0]]), dim=-1)
        assert torch.allclose(model.encode_text(ids, mask)[0], expected, atol=1e-6)

        # changing the hidden state everywhere but [SEP] leaves the embedding alone; at [SEP] it does not
        def with_hidden(new):
            def hook(module, args, output):
                output.last_hidden_state = new
                return output
            handle = model.text_encoder.register_forward_hook(hook)
            try:
                return model.encode_text(ids, mask)
            finally:
                handle.remove()

        base = with_hidden(hidden.clone())
        rows = torch.arange(len(ids))
        elsewhere = hidden + torch.randn(hidden.shape, generator=torch.Generator().manual_seed(0))
        elsewhere[rows, pos] = hidden[rows, pos]
        assert torch.allclose(with_hidden(elsewhere), base, atol=1e-6)
        at_sep = hidden.clone()
        at_sep[rows, pos] += torch.randn(at_sep[rows, pos].shape, generator=torch.Generator().manual_seed(1))
        moved = with_hidden(at_sep)
        assert all(not torch.allclose(moved[r], base[r], atol=1e-3) for r in rows)
    bad = ids.clone()
    bad[bad == tok.sep_token_id] = tok.pad_token_id
    with pytest.raises(ValueError, match="SEP"):
        sep_positions(bad, tok.sep_token_id)


def test_save_and_load_folder(clip, tmp_path):
    model, tok = clip
    model.eval()
    model.save_pretrained(tmp_path / "clip", extra={"text_source": "radiologist"}, tokenizer=tok)
    assert (tmp_path / "clip" / "config.json").exists() and (tmp_path / "clip" / "model.safetensors").exists()
    loaded = CLIPModel.from_pretrained(tmp_path / "clip")
    tok2, config = loaded.tokenizer, loaded.folder_config
    x = torch.rand(2, 1, 64, 64)
    t = tok2(CORPUS[:2], padding=True, return_tensors="pt")
    with torch.no_grad():
        assert torch.allclose(model.encode_image(x), loaded.encode_image(x), atol=1e-6)
        assert torch.allclose(model.encode_text(t["input_ids"], t["attention_mask"]),
                              loaded.encode_text(t["input_ids"], t["attention_mask"]), atol=1e-6)
        encoder = load_clip_image_encoder(tmp_path / "clip").eval()
        assert torch.allclose(encoder(x), model.image_encoder(x), atol=1e-6)
    assert config["text_source"] == "radiologist"


def test_imagenet_weights_file_is_loaded_and_checked(tmp_path):
    import torchvision

    torch.manual_seed(3)
    reference = torchvision.models.resnet18(weights=None)
    torch.save(reference.state_dict(), tmp_path / "r18.pth")
    encoder = ImageEncoder("resnet18", tmp_path / "r18.pth")
    assert torch.equal(encoder.trunk.conv1.weight, reference.conv1.weight)
    with pytest.raises(ValueError, match="state dict"):
        ImageEncoder("resnet50", tmp_path / "r18.pth")
    with pytest.raises(FileNotFoundError):
        ImageEncoder("resnet18", tmp_path / "absent.pth")


# --- texts, views and a tiny end-to-end training run ------------------------------------

import json  # noqa: E402

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from crrg_clip.data.clip_dataset import CLIPViews, build_items, generated_texts, radiologist_texts  # noqa: E402
from crrg_clip.data.normalize import IMAGENET_MEAN, normalization  # noqa: E402
from crrg_clip.train.clip import cosine_with_warmup, train_clip as _train_clip  # noqa: E402
from test_settings import default_settings  # noqa: E402


def clip_settings(**values):
    """The schema's R-CLIP settings (unit image, dataset normalisation) with ``values``."""
    import dataclasses

    return dataclasses.replace(default_settings("clip"), **values)


def train_clip(*, texts_path, backtranslations_path, cache_images, cache_index, out_dir, checkpoint_dir, settings,
               seed, device, text_source, progress):
    """Rule train_clip's call on the fixture's files."""
    inputs = {"texts": texts_path, "backtranslations": backtranslations_path, "cache_images": cache_images,
              "cache_index": cache_index}
    return _train_clip(settings, inputs, {"model": out_dir}, device=device, seed=seed, checkpoint_dir=checkpoint_dir,
                       text_source=text_source, progress=progress)


def test_radiologist_and_generated_texts_record_exclusions():
    subsample = pd.DataFrame({"dicom_id": ["a", "b", "c", "d"], "subject_id": [1, 1, 2, 3],
                              "study_id": [10, 10, 20, 30], "split": ["train", "train", "train", "valid"]})
    images = pd.DataFrame({"dicom_id": ["a", "b", "c", "d"], "study_id": [10, 10, 20, 30],
                           "findings": ["Clear lungs.", "", "Effusion.", "Opacity."],
                           "has_findings": [True, False, True, True]})
    texts, log = radiologist_texts(images, subsample, ["train", "valid"])
    assert texts["dicom_id"].tolist() == ["a", "c", "d"] and list(texts.columns) == ["study_id", "dicom_id", "text", "split"]
    assert log.rows == [("rclip-texts-radiologist", "b", "no_findings")]
    reports = pd.DataFrame({"dicom_id": ["a", "b", "c"], "report": ["Gen a.", "Gen b.", "  "]})
    texts, log = generated_texts(reports, subsample, ["train", "valid"])
    assert texts["dicom_id"].tolist() == ["a", "b"]
    assert sorted(r[1:] for r in log.rows) == [("c", "empty_generated_report"), ("d", "no_generated_report")]


def mimic_fixture(folder, n_studies=12, size=40):
    rng = np.random.default_rng(0)
    rows, texts = [], []
    images = []
    for s in range(n_studies):
        views = 2 if s % 3 == 0 else 1
        sick = s % 2 == 1
        for v in range(views):
            image = (rng.random((size, size)) * 50).astype(np.uint8)
            if sick:
                image[10:20, 10:20] = 220
            images.append(image)
            rows.append({"dicom_id": f"d{s}_{v}", "row": len(rows), "study_id": 100 + s,
                         "view_position": "PA" if v == 0 else "LATERAL"})
        texts.append({"study_id": 100 + s, "dicom_id": f"d{s}_0", "split": "valid" if s >= 9 else "train",
                      "text": "Focal consolidation is present." if sick else "The lungs are clear."})
    np.save(folder / "images.npy", np.stack(images))
    pd.DataFrame(rows).to_parquet(folder / "index.parquet", index=False)
    texts = pd.DataFrame(texts)
    texts.to_parquet(folder / "texts.parquet", index=False)
    back = texts[["text"]].drop_duplicates().assign(back_translation=lambda f: f["text"] + " Again.",
                                                   status="ok")
    back.to_parquet(folder / "bt.parquet", index=False)
    return texts, back, pd.DataFrame(rows), np.stack(images)


def test_views_use_a_second_image_of_the_study_and_are_seeded(tmp_path):
    texts, back, index, images = mimic_fixture(tmp_path)
    items = build_items(texts, back, index, split="train")
    assert items.others(0, items.rows[0][0]) == [1]  # study 100 has a lateral at cache row 1
    grey = normalization("dataset", {"mean": 0.5, "std": 0.3})
    views = CLIPViews(items, images, image_size=32, normalize=grey, augment=None, seed=0, train=True)
    x1, x2, t1, t2 = views[0]
    assert x1.shape == (1, 32, 32) and {t1, t2} == {items.texts[0][0], items.back_translations[0][0]}
    again = views[0]
    assert torch.equal(again[0], x1) and again[2] == t1
    orders = set()
    for epoch in range(8):
        views.set_epoch(epoch)
        orders.add(views[0][2] == items.texts[0][0])
    assert orders == {True, False}  # the text order is random across epochs
    single = CLIPViews(items, images, image_size=32, normalize=grey, augment=None, seed=0, train=True)[1]
    assert not torch.equal(single[0], single[1])  # one image, two augmentations
    with pytest.raises(ValueError, match="back-translation"):
        build_items(texts, back.iloc[:1], index, split="train")


def two_frontal_fixture():
    """Study 100: two images with texts (rows 0, 1) and a lateral (row 2); study 200: one image."""
    index = pd.DataFrame({"dicom_id": ["a", "b", "c", "d"], "row": [0, 1, 2, 3], "study_id": [100, 100, 100, 200],
                          "view_position": ["PA", "AP", "LATERAL", "PA"]})
    texts = pd.DataFrame({"study_id": [100, 100, 200], "dicom_id": ["a", "b", "d"], "split": "train",
                          "text": ["Clear lungs.", "Clear lungs.", "Effusion."]})
    back = pd.DataFrame({"text": ["Clear lungs.", "Effusion."], "back_translation": ["Lungs clear.", "An effusion."],
                         "status": "ok"})
    images = (np.arange(4)[:, None, None] * 60 + np.zeros((4, 16, 16))).astype(np.uint8)
    return texts, back, index, images


def test_study_unit_makes_one_item_per_study_with_two_distinct_images():
    texts, back, index, images = two_frontal_fixture()
    per_image = build_items(texts, back, index, split="train", unit="image")
    assert per_image.rows == [[0], [1], [3]]  # two items of study 100: in-batch false negatives
    per_study = build_items(texts, back, index, split="train", unit="study")
    assert per_study.rows == [[0, 1], [3]] and per_study.study_rows == [[0, 1, 2], [3]]
    assert per_study.n_with_second_image() == 1
    views = CLIPViews(per_study, images, image_size=16, normalize=normalization(), augment=None, seed=0, train=True)
    first = set()
    for epoch in range(12):
        views.set_epoch(epoch)
        x1, x2, t1, t2 = views[0]
        i1 = round(float(x1.mean() * 0.302 + 0.471) * 255 / 60)  # which cache row I1 came from
        i2 = round(float(x2.mean() * 0.302 + 0.471) * 255 / 60)
        assert i1 in (0, 1) and i2 in (0, 1, 2) and i1 != i2 and {t1, t2} == {"Clear lungs.", "Lungs clear."}
        first.add(i1)
    assert first == {0, 1}  # I1 is drawn among the study's images with a text
    with pytest.raises(ValueError, match="rclip.unit"):
        build_items(texts, back, index, split="train", unit="patient")


def test_cosine_schedule_warms_up_then_decays():
    values = [cosine_with_warmup(s, warmup_steps=4, total_steps=20) for s in range(20)]
    assert values[:4] == [0.25, 0.5, 0.75, 1.0] and values[4] == 1.0
    assert all(a >= b for a, b in zip(values[4:], values[5:])) and values[-1] < 0.05


def test_train_clip_end_to_end_writes_the_model_folder(tmp_path, bert_dir):
    mimic_fixture(tmp_path)
    settings = clip_settings(image_encoder="resnet18", text_model=str(bert_dir), image_size=32, max_text_tokens=16,
                             projection_dim=8, epochs=2, batch_size=4, lr=1e-3, warmup_epochs=1)
    out = tmp_path / "clip"
    result = train_clip(texts_path=tmp_path / "texts.parquet", backtranslations_path=tmp_path / "bt.parquet",
                        cache_images=tmp_path / "images.npy", cache_index=tmp_path / "index.parquet", out_dir=out,
                        checkpoint_dir=tmp_path / "ckpt", settings=settings, seed=0, device=torch.device("cpu"),
                        text_source="radiologist", progress=False)
    for name in ("config.json", "model.safetensors", "metrics.tsv", "loss_curve.png", "run.json", "tokenizer"):
        assert (out / name).exists(), name
    metrics = pd.read_csv(out / "metrics.tsv", sep="\t")
    assert list(metrics["epoch"]) == [0, 1]
    assert {"train_mvs", "train_icl", "train_tcl", "train_loss", "val_loss"} <= set(metrics.columns)
    assert json.loads((out / "run.json").read_text())["n_train"] == 9
    assert result["best_epoch"] == int(metrics["val_loss"].idxmin())
    config = CLIPModel.from_pretrained(out).folder_config
    assert config["text_source"] == "radiologist" and config["image_size"] == 32
    assert config["normalize"]["kind"] == "dataset" and config["unit"] == "image"


def test_train_clip_on_studies_with_imagenet_normalisation(tmp_path, bert_dir):
    texts, _, _, _ = mimic_fixture(tmp_path)
    extra = texts[texts["dicom_id"] == "d0_0"].assign(dicom_id="d0_1")  # study 100's lateral gets the text too
    pd.concat([texts, extra], ignore_index=True).to_parquet(tmp_path / "texts.parquet", index=False)
    settings = clip_settings(image_encoder="resnet18", text_model=str(bert_dir), image_size=32, max_text_tokens=16,
                             projection_dim=8, epochs=1, batch_size=4, lr=1e-3, warmup_epochs=0, unit="study",
                             normalization="imagenet")
    out = tmp_path / "clip"
    train_clip(texts_path=tmp_path / "texts.parquet", backtranslations_path=tmp_path / "bt.parquet",
               cache_images=tmp_path / "images.npy", cache_index=tmp_path / "index.parquet", out_dir=out,
               checkpoint_dir=tmp_path / "ckpt", settings=settings, seed=0, device=torch.device("cpu"),
               text_source="radiologist", progress=False)
    run = json.loads((out / "run.json").read_text())
    assert run["n_train"] == 9  # 10 training images with texts, 9 studies
    config = CLIPModel.from_pretrained(out).folder_config
    assert config["unit"] == "study" and config["normalize"]["mean"] == list(IMAGENET_MEAN)


def test_demo_wordpiece_ids_do_not_depend_on_the_process():
    """The tokenizers trainer numbers a vocabulary in hash-map order; the demo fixes the order,
    so two processes (different hash seeds) build the same ids."""
    import json
    import os
    import subprocess
    import sys

    code = ("import json; from crrg_clip.models.demo_bert import train_wordpiece_tokenizer; "
            "t = train_wordpiece_tokenizer(['The right lung is clear.', 'No left pleural effusion.', "
            "'A 12 mm nodule is seen.'] * 5, vocab_size=1000); print(json.dumps(t.get_vocab(), sort_keys=True))")
    vocabs = [json.loads(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                                        env={**os.environ, "PYTHONHASHSEED": str(seed)}).stdout)
              for seed in (1, 2, 3)]
    assert vocabs[0] == vocabs[1] == vocabs[2]
    assert vocabs[0]["[PAD]"] == 0 or min(vocabs[0].values()) == 0


def test_from_pretrained_gives_eval_mode_tokenizer_config_and_saved_temperature(bert_dir, tmp_path):
    from crrg_clip.modelio import KindError
    from crrg_clip.models.probe import LinearProbe

    torch.manual_seed(0)
    model, _ = build_clip(image_encoder="resnet18", image_weights=None, text_model=bert_dir, projection_dim=8,
                          temperature_init=0.07)
    with torch.no_grad():
        model.logit_scale.fill_(2.5)  # not the init: the loaded temperature must come from the folder
    model.eval().save_pretrained(tmp_path / "clip", extra={"text_source": "generated"})  # its own tokenizer
    loaded = CLIPModel.from_pretrained(tmp_path / "clip")
    assert type(loaded) is CLIPModel and not any(m.training for m in loaded.modules())
    assert loaded.logit_scale.item() == 2.5 and loaded.folder_config["text_source"] == "generated"
    x, t = torch.rand(2, 1, 64, 64), loaded.tokenizer(CORPUS[:2], padding=True, return_tensors="pt")
    with torch.no_grad():
        assert torch.equal(model.encode_image(x), loaded.encode_image(x))
        assert torch.equal(model.encode_text(t["input_ids"], t["attention_mask"]),
                           loaded.encode_text(t["input_ids"], t["attention_mask"]))
    # a folder of another kind: a clear error naming the folder and both kinds
    LinearProbe(ImageEncoder("resnet18")).save_pretrained(tmp_path / "probe", {"encoder": "random_init"})
    with pytest.raises(KindError, match=r"probe/config.json: kind 'rsna_probe', expected 'rclip'"):
        CLIPModel.from_pretrained(tmp_path / "probe")
    with pytest.raises(KindError, match=r"clip/config.json: kind 'rclip', expected 'rsna_probe'"):
        LinearProbe.from_pretrained(tmp_path / "clip")
