"""S&T and AdaAtt: shapes, teacher forcing agrees with step-wise decoding, one step learns,
beam 1 = greedy, save/load round trip, and kill-and-resume gives identical weights; the
word vocabulary; the trainer end to end on a tiny cache."""

import numpy as np
import pandas as pd
import pytest
import torch

from crrg_clip.models.adaatt import AdaAtt, AdaAttConfig
from crrg_clip.models.beam_search import beam_search, greedy_decode
from crrg_clip.models.generator import LanguageModelLoss, collate_targets
from crrg_clip.models.report_vocab import WordVocab, detokenize, tokenize
from crrg_clip.models.show_tell import ShowTell, ShowTellConfig
from crrg_clip.train.report_baseline import (ReportBaselineTrainer, load_baseline, load_split,
                                             generate_baseline_reports, train_report_baseline)
from test_settings import default_settings

pytestmark = pytest.mark.usefixtures("one_torch_thread")

REPORTS = ["The lungs are clear.", "There is a small left effusion.", "Heart size is normal. The lungs are clear.",
           "No pneumothorax.", "Mild cardiomegaly. No effusion."]


def tiny(kind, vocab_size=20, dropout=0.0):
    torch.manual_seed(0)
    if kind == "show_tell":
        return ShowTell(ShowTellConfig(vocab_size=vocab_size, backbone="resnet18", embed_dim=16, hidden_dim=24,
                                       dropout=dropout))
    return AdaAtt(AdaAttConfig(vocab_size=vocab_size, backbone="resnet18", grid=2, embed_dim=16, hidden_dim=24,
                               attention_dim=12, dropout=dropout))


KINDS = ["show_tell", "adaatt"]


def test_vocab_threshold_targets_and_round_trip(tmp_path):
    vocab = WordVocab.build(REPORTS, min_count=2)
    assert "lungs" in vocab.index and "pneumothorax" not in vocab.index  # seen once
    assert vocab.words[:3] == ["<pad>", "<eos>", "<unk>"]
    (target,) = vocab.targets(["The lungs are clear."], max_length=3)
    assert target[0] == target[-1] == vocab.eos_id and len(target) == 4  # <eos> 2 words <eos>
    assert vocab.decode(vocab.encode("The lungs are clear.")) == "The lungs are clear."
    assert vocab.decode([vocab.index["clear"], vocab.eos_id, vocab.index["lungs"]]) == "clear"
    assert detokenize(tokenize("Size 1.5 cm (stable), AP/PA view.")) == "Size 1.5 cm (stable), AP/PA view."
    vocab.save(tmp_path / "v.json")
    assert WordVocab.load(tmp_path / "v.json").words == vocab.words


@pytest.mark.parametrize("kind", KINDS)
def test_forward_shape_and_agreement_with_steps(kind):
    model = tiny(kind).eval()
    images = torch.randn(3, 1, 64, 64)
    ids = torch.randint(3, 20, (3, 5))
    logits = model(images, ids)
    assert logits.shape == (3, 5, 20)
    state = model.start(images)
    stepped = []
    for t in range(5):
        out, state = model.step(ids[:, t], state)
        stepped.append(out)
    torch.testing.assert_close(torch.stack(stepped, 1), logits, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("kind", KINDS)
def test_train_steps_reduce_loss(kind):
    vocab = WordVocab.build(REPORTS, 1)
    model = tiny(kind, vocab_size=len(vocab)).train()  # batch-norm batch statistics, no dropout
    batch = collate_targets(vocab.targets(REPORTS[:4], 20), vocab.pad_id)
    images = torch.randn(4, 1, 64, 64)
    loss_fn = LanguageModelLoss()
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)

    def loss():
        return loss_fn(model(images, batch["input_ids"]), batch["labels"])["lm"]

    losses = []
    for _ in range(3):
        value = loss()
        losses.append(float(value.detach()))
        optimizer.zero_grad()
        value.backward()
        torch.nn.utils.clip_grad_value_(model.parameters(), 0.1)
        optimizer.step()
    assert losses[-1] < losses[0]


@pytest.mark.parametrize("kind", KINDS)
def test_beam_one_is_greedy_and_wider_beams_score_no_worse(kind):
    model = tiny(kind).eval()
    images = torch.randn(4, 1, 64, 64)
    greedy = greedy_decode(model, images, max_length=8, bos_id=1, eos_id=1)
    assert beam_search(model, images, beam_size=1, max_length=8, bos_id=1, eos_id=1) == greedy
    assert all(1 not in row and len(row) <= 8 for row in greedy)

    def log_prob(image, row):  # of the sequence row + <eos> (or cut at max_length)
        ids = torch.tensor([[1, *row, 1]])
        with torch.no_grad():
            logp = torch.log_softmax(model(image[None], ids), -1)[0]
        steps = len(row) + 1 if len(row) < 8 else len(row)
        return float(sum(logp[t, ids[0, t + 1]] for t in range(steps)))

    wide = beam_search(model, images, beam_size=4, max_length=8, bos_id=1, eos_id=1)
    for i in range(4):
        assert log_prob(images[i], wide[i]) >= log_prob(images[i], greedy[i]) - 1e-4


@pytest.mark.parametrize("kind", KINDS)
def test_save_load_round_trip(kind, tmp_path):
    model = tiny(kind).eval()
    model.vocab = WordVocab.build(REPORTS, 1)
    model.save_pretrained(tmp_path / "m")
    loaded = load_baseline(tmp_path / "m")
    assert type(loaded) is type(model) and not loaded.training
    assert loaded.vocab.words == model.vocab.words
    images, ids = torch.randn(2, 1, 64, 64), torch.randint(0, 20, (2, 4))
    torch.testing.assert_close(loaded(images, ids), model(images, ids))
    with pytest.raises(ValueError, match="kind"):
        (AdaAtt if kind == "show_tell" else ShowTell).from_pretrained(tmp_path / "m")


# ---------------------------------------------------------------- trainer on a tiny cache

def make_report_data(root, n=12, size=64):
    """A cache, images.parquet and a split: the report says which half of the image is bright."""
    rng = np.random.default_rng(0)
    root.mkdir(parents=True, exist_ok=True)
    images = rng.integers(0, 40, (n, size, size), dtype=np.uint8)
    ids = [f"d{i:03d}" for i in range(n)]
    findings = []
    for i in range(n):
        left = i % 2 == 0
        images[i, :, : size // 2] += 150 if left else 0
        images[i, :, size // 2:] += 0 if left else 150
        findings.append("Opacity on the left." if left else "The lungs are clear.")
    np.save(root / "images.npy", images)
    pd.DataFrame({"dicom_id": ids, "row": np.arange(n, dtype=np.int64)}).to_parquet(root / "index.parquet")
    pd.DataFrame({"dicom_id": ids, "findings": findings, "has_findings": True}).to_parquet(root / "images.parquet")
    split = ["train"] * (n - 4) + ["valid"] * 2 + ["test"] * 2
    pd.DataFrame({"dicom_id": ids, "split": split}).to_parquet(root / "split.parquet")
    return dict(images_path=root / "images.parquet", split_path=root / "split.parquet",
                cache_images=root / "images.npy", cache_index=root / "index.parquet")


def settings(kind, epochs=3):
    import dataclasses

    return dataclasses.replace(default_settings("report_baseline", baseline=kind), backbone="resnet18",
                               image_size=32, grid=2, embed_dim=16, hidden_dim=24, attention_dim=12, dropout=0.0,
                               vocab_min_count=1, max_length=10, epochs=epochs, batch_size=4, lr=3e-3,
                               grad_clip=0.1, beam_size=2)


def test_set_standardization_gives_zero_mean_unit_std_features():
    model = tiny("adaatt").eval()
    raw = model.encoder(torch.randn(6, 1, 64, 64))  # (6, 4, C) identity standardisation at first
    out = model.encoder.set_standardization(raw)
    flat = out.reshape(-1, out.shape[-1])
    torch.testing.assert_close(flat.mean(0), torch.zeros(flat.shape[1]), atol=1e-5, rtol=0)
    torch.testing.assert_close(flat.std(0)[raw.reshape(-1, raw.shape[-1]).std(0) > 1e-6],
                               torch.ones(int((raw.reshape(-1, raw.shape[-1]).std(0) > 1e-6).sum())), atol=1e-4, rtol=0)


@pytest.mark.parametrize("kind", KINDS)
def test_features_path_equals_image_path(kind):
    model = tiny(kind).eval()
    images, ids = torch.randn(3, 1, 64, 64), torch.randint(3, 20, (3, 5))
    torch.testing.assert_close(model.forward_features(model.encoder(images), ids), model(images, ids))


@pytest.mark.parametrize("freeze", [True, False], ids=["frozen", "fine_tuned"])
@pytest.mark.parametrize("kind", KINDS)
def test_trainer_writes_folder_and_reports(kind, freeze, tmp_path):
    import dataclasses

    from safetensors.torch import load_file

    paths = make_report_data(tmp_path / "data")
    inputs = {"images": paths["images_path"], "split": paths["split_path"], "cache_images": paths["cache_images"],
              "cache_index": paths["cache_index"]}
    s = dataclasses.replace(settings(kind, epochs=4), freeze_encoder=freeze)
    summary = train_report_baseline(s, inputs, {"model": tmp_path / "model"},
                                    device=torch.device("cpu"), seed=0, checkpoint_dir=tmp_path / "ckpt")
    assert summary["last_train_loss"] < summary["first_train_loss"]
    torch.manual_seed(0)  # the trainer's seed: the encoder it started from
    from crrg_clip.train.report_baseline import build_model

    initial = build_model(s, summary["vocab_size"], 0).encoder.state_dict()
    trained = load_file(tmp_path / "model" / "model.safetensors")
    moved = [k for k, v in initial.items() if v.is_floating_point() and not torch.equal(v, trained[f"encoder.{k}"])]
    if freeze:  # every trunk tensor (BN statistics too) as it started; the standardisation fitted
        assert sorted(moved) == ["feature_mean", "feature_std"]
    else:
        assert any(k.startswith("trunk.") for k in moved) and "feature_mean" not in moved
    assert {"config.json", "model.safetensors", "vocab.json", "metrics.tsv", "loss_curve.png", "run.json"} <= {
        p.name for p in (tmp_path / "model").iterdir()}
    assert not (tmp_path / "ckpt" / "last.pt").exists()
    frame = generate_baseline_reports(s, {**inputs, "model": tmp_path / "model"},
                                      {"reports": tmp_path / "r.parquet"}, device=torch.device("cpu"), batch_size=32)
    assert list(frame.columns) == ["dicom_id", "report", "reference"]
    assert frame["dicom_id"].tolist() == ["d010", "d011"]
    assert pd.read_parquet(tmp_path / "r.parquet").equals(frame)


class Killed(RuntimeError):
    pass


@pytest.mark.parametrize("kind", KINDS)
def test_resume_after_kill_gives_identical_weights(kind, tmp_path):
    paths = make_report_data(tmp_path / "data")
    frames = {k: pd.read_parquet(paths[k]) for k in ("images_path", "split_path")}
    cache = np.load(paths["cache_images"], mmap_mode="r")
    s = settings(kind)
    common = dict(images_table=frames["images_path"], splits=frames["split_path"], cache=cache,
                  index_path=paths["cache_index"], image_size=s.image_size, normalize=s.normalize, seed=0)
    train, valid = load_split(split="train", augment=s.augment, **common), load_split(split="valid", augment=None, **common)
    vocab = WordVocab.build(train.reports, 1)

    def run(ckpt, metrics, kill_after=None):
        torch.manual_seed(0)
        model = tiny(kind, vocab_size=len(vocab), dropout=0.5)
        trainer = ReportBaselineTrainer(model, vocab, train, valid, s, device=torch.device("cpu"), seed=0)
        train_epoch = trainer.train_epoch

        def wrapped(epoch):
            if kill_after is not None and epoch > kill_after:
                raise Killed(epoch)
            return train_epoch(epoch)

        trainer.train_epoch = wrapped
        trainer.fit(ckpt, metrics)
        return {k: v.clone() for k, v in model.state_dict().items()}

    reference = run(tmp_path / "ref", tmp_path / "ref.tsv")
    with pytest.raises(Killed):
        run(tmp_path / "run", tmp_path / "run.tsv", kill_after=0)
    torch.manual_seed(12345)  # a new process starts from another RNG state
    resumed = run(tmp_path / "run", tmp_path / "run.tsv")
    assert (tmp_path / "ref.tsv").read_text() == (tmp_path / "run.tsv").read_text()
    assert reference.keys() == resumed.keys()
    for key in reference:
        assert torch.equal(reference[key], resumed[key]), key


def test_report_images_resize_once_and_augment_a_copy():
    import numpy as np
    import torch

    from crrg_clip.data.region_dataset import AugmentConfig, Normalize
    from crrg_clip.train.report_baseline import ReportImages

    cache = np.random.default_rng(0).integers(0, 255, size=(3, 32, 32), dtype=np.uint8)
    images = ReportImages(cache, np.array([2, 0]), size=16, normalize=Normalize(),
                          augment_cfg=AugmentConfig(), seed=0)
    first = images.batch([0, 1], epoch=0)
    kept = images.resized(0).clone()
    again = images.batch([0, 1], epoch=0)
    assert torch.equal(first, again)  # the same epoch gives the same augmented batch
    assert torch.equal(images.resized(0), kept)  # augmentation left the kept resize alone
    assert not torch.equal(images.batch([0, 1], epoch=1), first)  # other epochs augment anew
