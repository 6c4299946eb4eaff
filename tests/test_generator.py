"""The region-conditioned GPT-2: prefix cache, positions, loss targets, generate vs a manual
loop, beam search with the prefix cache, save/load, training determinism and inference."""

import json

import numpy as np
import pandas as pd
import pytest
import torch
from safetensors.torch import save_file
from torch import nn
from transformers import AutoTokenizer, GPT2LMHeadModel

from crrg_clip.generate import PREDICTION_COLUMNS, predict_regions, read_region_features, reports_frame
from crrg_clip.models.demo_gpt2 import build_demo_gpt2, demo_corpus, save_demo_gpt2
from crrg_clip.models.generator import (IGNORE_INDEX, LanguageModelLoss, RegionGenerator, build_generator,
                                        collate_targets, encode_sentences)
from crrg_clip.regions import NUM_REGIONS
from crrg_clip.train.generator import GeneratorTrainer, SentenceData, build_sentence_data
from crrg_clip.train.loop import Schedule, reset_stale_checkpoint

SENTENCES = [
    "the lungs are clear.", "no pleural effusion or pneumothorax.", "heart size is normal.",
    "mild cardiomegaly is seen.", "there is a small left pleural effusion.", "the mediastinum is unremarkable.",
    "right lower lobe opacity may reflect atelectasis.", "no acute osseous abnormality.",
]
FEATURE_DIM = 8


@pytest.fixture(scope="module")
def gpt2_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("gpt2")
    model, tokenizer = build_demo_gpt2(SENTENCES * 5, vocab_size=320, n_layer=2, n_embd=32, n_head=4,
                                       n_positions=64, seed=0)
    save_demo_gpt2(folder, model, tokenizer)
    return folder


def make_generator(gpt2_dir, seed=0, scale=3.0):
    torch.manual_seed(seed)
    generator = build_generator(str(gpt2_dir), feature_dim=FEATURE_DIM, hidden_dim=16)
    with torch.no_grad():  # a random GPT-2 at init is nearly uniform; scale it so outputs differ
        for parameter in generator.parameters():
            parameter.mul_(scale)
    return generator.eval()


class StandInSelector(nn.Module):
    """The selector interface (project / select) for tests only."""

    def __init__(self, in_channels=6, dim=FEATURE_DIM):
        super().__init__()
        torch.manual_seed(1)
        self.projection = nn.Linear(in_channels, dim)

    def project(self, features):
        return self.projection(features.float())

    @torch.no_grad()
    def select(self, features, detected=None):
        logits = features[..., 0].float()
        selected = logits > 0
        if detected is not None:
            selected &= detected.bool()
        return logits, selected


def test_demo_gpt2_round_trip(gpt2_dir):
    model = GPT2LMHeadModel.from_pretrained(gpt2_dir)
    tokenizer = AutoTokenizer.from_pretrained(gpt2_dir)
    assert model.config.n_layer == 2 and model.config.vocab_size == len(tokenizer)
    assert tokenizer.eos_token_id == model.config.eos_token_id == model.config.bos_token_id
    text = "no pleural effusion or pneumothorax."
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    assert tokenizer.decode(ids) == text and tokenizer.eos_token_id not in ids
    # byte-level: unseen characters still round-trip
    assert tokenizer.decode(tokenizer("Ünseen 42%", add_special_tokens=False)["input_ids"]) == "Ünseen 42%"


def test_demo_tokenizer_is_deterministic():
    first, tok1 = build_demo_gpt2(SENTENCES, vocab_size=300, n_layer=1, n_embd=16, n_head=2, seed=0)
    second, tok2 = build_demo_gpt2(SENTENCES, vocab_size=300, n_layer=1, n_embd=16, n_head=2, seed=0)
    assert tok1.get_vocab() == tok2.get_vocab()
    for a, b in zip(first.parameters(), second.parameters()):
        assert torch.equal(a, b)


def test_demo_corpus_uses_training_split_only():
    images = pd.DataFrame({"dicom_id": ["a", "b"], "split": ["train", "test"],
                           "findings": ["train findings.", "test findings."]})
    regions = pd.DataFrame({"dicom_id": ["a", "a", "b"], "region_index": [1, 0, 0],
                            "phrase": ["second.", "first.", "test phrase."]})
    assert demo_corpus(images, regions) == ["train findings.", "first.", "second."]


def test_targets_and_labels(gpt2_dir):
    tokenizer = AutoTokenizer.from_pretrained(gpt2_dir)
    eos = tokenizer.eos_token_id
    sequences = encode_sentences(tokenizer, ["heart size is normal.", "the lungs are clear and well expanded."], 6)
    assert all(s[0] == eos and s[-1] == eos and len(s) <= 6 for s in sequences)
    batch = collate_targets(sequences, eos)
    lengths = [len(s) for s in sequences]
    assert batch["attention_mask"].sum(1).tolist() == lengths
    for row, length in enumerate(lengths):
        labels = batch["labels"][row]
        assert labels[0] == IGNORE_INDEX  # the BOS is never a target
        assert labels[1:length].tolist() == sequences[row][1:]  # sentence + closing EOS are targets
        assert (labels[length:] == IGNORE_INDEX).all()  # padding (= EOS id) is not


def test_loss_matches_naive_cross_entropy():
    torch.manual_seed(0)
    logits = torch.randn(2, 5, 7)
    labels = torch.tensor([[IGNORE_INDEX, 1, 2, 3, IGNORE_INDEX], [IGNORE_INDEX, 4, 5, IGNORE_INDEX, IGNORE_INDEX]])
    terms = [-torch.log_softmax(logits[b, t - 1], -1)[labels[b, t]] for b in range(2) for t in range(1, 5)
             if labels[b, t] != IGNORE_INDEX]
    assert torch.allclose(LanguageModelLoss()(logits, labels)["lm"], torch.stack(terms).mean(), atol=1e-6)


def test_prefix_cache_shapes(gpt2_dir):
    generator = make_generator(gpt2_dir)
    cache = generator.prefix_cache(torch.randn(3, FEATURE_DIM), repeat=2)
    assert cache.get_seq_length() == 1
    for layer in cache.layers:
        assert layer.keys.shape == (6, 4, 1, 8) and layer.values.shape == (6, 4, 1, 8)
    # interleaved like generate's beam expansion: rows 0, 1 are item 0
    assert torch.equal(cache.layers[0].keys[0], cache.layers[0].keys[1])


def test_positions_start_at_zero_and_come_from_wpe(gpt2_dir):
    generator = make_generator(gpt2_dir)
    seen = {"wpe": [], "wte": []}
    hooks = [getattr(generator.gpt2.transformer, name).register_forward_hook(
        lambda module, args, out, name=name: seen[name].append(args[0].clone())) for name in ("wpe", "wte")]
    batch = collate_targets(encode_sentences(generator.tokenizer, SENTENCES[:2], 20), generator.eos_token_id)
    generator(torch.randn(2, FEATURE_DIM), batch["input_ids"], batch["attention_mask"])
    for hook in hooks:
        hook.remove()
    length = batch["input_ids"].shape[1]
    assert torch.equal(seen["wpe"][0], torch.arange(length).expand(2, -1))  # prefix is not a position
    assert len(seen["wte"]) == 1 and torch.equal(seen["wte"][0], batch["input_ids"])  # no positions via wte


def test_prefix_conditions_and_padding_is_masked(gpt2_dir):
    generator = make_generator(gpt2_dir)
    features = torch.randn(2, FEATURE_DIM)
    sequences = encode_sentences(generator.tokenizer, [SENTENCES[0], SENTENCES[6]], 30)
    batch = collate_targets(sequences, generator.eos_token_id)
    with torch.no_grad():
        both = generator(features, batch["input_ids"], batch["attention_mask"])
        alone = generator(features[:1], batch["input_ids"][:1, :len(sequences[0])],
                          batch["attention_mask"][:1, :len(sequences[0])])
        other = generator(features[1:], batch["input_ids"][:1, :len(sequences[0])],
                          batch["attention_mask"][:1, :len(sequences[0])])
    assert torch.allclose(both[0, :len(sequences[0])], alone[0], atol=1e-5)  # right padding changes nothing
    assert not torch.allclose(alone, other, atol=1e-3)  # the region feature matters


def test_frozen_gpt2_trains_only_the_conditioning(gpt2_dir):
    generator = make_generator(gpt2_dir)
    generator.freeze_gpt2(True)
    batch = collate_targets(encode_sentences(generator.tokenizer, SENTENCES[:3], 20), generator.eos_token_id)
    logits = generator(torch.randn(3, FEATURE_DIM), batch["input_ids"], batch["attention_mask"])
    LanguageModelLoss()(logits, batch["labels"])["lm"].backward()
    assert all(p.grad is None for p in generator.gpt2.parameters())
    for name in ("mlp.0.weight", "uk.0.weight", "uv.1.weight"):
        grad = dict(generator.conditioning.named_parameters())[name].grad
        assert grad is not None and grad.abs().sum() > 0


def manual_greedy(generator, features, steps):
    ids = torch.full((features.shape[0], 1), generator.eos_token_id, device=features.device)
    with torch.no_grad():
        for _ in range(steps):  # full recomputation each step: no cache reuse at all
            logits = generator(features, ids, torch.ones_like(ids))
            ids = torch.cat([ids, logits[:, -1].argmax(-1, keepdim=True)], dim=1)
    return ids[:, 1:]


def test_greedy_generate_matches_manual_loop(gpt2_dir):
    generator = make_generator(gpt2_dir)
    torch.manual_seed(3)
    features = torch.randn(5, FEATURE_DIM)
    generated = generator.generate(features, num_beams=1, max_new_tokens=8)
    expected = manual_greedy(generator, features, generated.shape[1])
    eos = generator.eos_token_id
    for row, want in zip(generated.tolist(), expected.tolist()):
        end = want.index(eos) + 1 if eos in want else len(want)
        assert row[:end] == want[:end]  # after EOS, generate pads


def _sequence_logprob(generator, feature, tokens):
    ids = torch.tensor([[generator.eos_token_id, *tokens]])
    with torch.no_grad():
        logprobs = torch.log_softmax(generator(feature[None], ids, torch.ones_like(ids))[0, :-1].float(), -1)
    return float(logprobs[torch.arange(len(tokens)), torch.tensor(tokens)].sum())


def test_beam_search_expands_and_reorders_the_prefix_cache(gpt2_dir):
    generator = make_generator(gpt2_dir)
    torch.manual_seed(4)
    features = torch.randn(3, FEATURE_DIM)
    eos = generator.eos_token_id
    together = generator.generate(features, num_beams=3, max_new_tokens=7)
    for i in range(3):  # expansion: item i's beams see item i's prefix
        alone = generator.generate(features[i:i + 1], num_beams=3, max_new_tokens=7)
        assert together[i, :alone.shape[1]].tolist() == alone[0].tolist()
    # reordering: the returned score equals the log-probability recomputed without any cache
    output = generator.generate_output(features, num_beams=3, max_new_tokens=7, return_dict_in_generate=True,
                                       output_scores=True, length_penalty=0.0)
    for i in range(3):
        tokens = output.sequences[i, 2:].tolist()
        tokens = tokens[:tokens.index(eos) + 1] if eos in tokens else tokens
        assert abs(_sequence_logprob(generator, features[i], tokens) - float(output.sequences_scores[i])) < 1e-3
    # beam search finds a sequence at least as likely as greedy's (length penalty 0: plain log-prob)
    greedy = generator.generate(features, num_beams=1, max_new_tokens=7)
    for i in range(3):
        tokens = greedy[i].tolist()
        tokens = tokens[:tokens.index(eos) + 1] if eos in tokens else tokens
        assert float(output.sequences_scores[i]) >= _sequence_logprob(generator, features[i], tokens) - 1e-4


def test_save_load_round_trip(gpt2_dir, tmp_path):
    generator = make_generator(gpt2_dir)
    features = torch.randn(3, FEATURE_DIM)
    generator.save_pretrained(tmp_path / "generator")
    assert (tmp_path / "generator" / "gpt2" / "config.json").exists()
    assert json.loads((tmp_path / "generator" / "config.json").read_text())["conditioning"]["feature_dim"] == 8
    loaded = RegionGenerator.from_pretrained(tmp_path / "generator")
    assert torch.equal(generator.generate(features, num_beams=2, max_new_tokens=6),
                       loaded.generate(features, num_beams=2, max_new_tokens=6))


def _fake_features(tmp_path, name, dicom_ids, seed):
    generator = torch.Generator().manual_seed(seed)
    n = len(dicom_ids)
    tensors = {"features": torch.randn(n, NUM_REGIONS, 6, generator=generator).half(),
               "boxes": torch.rand(n, NUM_REGIONS, 4, generator=generator) * 100,
               "detected": (torch.rand(n, NUM_REGIONS, generator=generator) > 0.2).to(torch.uint8),
               "scores": torch.rand(n, NUM_REGIONS, generator=generator)}
    path = tmp_path / f"{name}.safetensors"
    save_file(tensors, str(path))
    pd.DataFrame({"dicom_id": dicom_ids, "row": np.arange(n)}).to_parquet(tmp_path / f"{name}.parquet")
    return read_region_features(path)


def _fake_regions(dicom_ids, seed):
    rng = np.random.default_rng(seed)
    rows = []
    for d in dicom_ids:
        for r in range(NUM_REGIONS):
            has = bool(rng.random() < 0.25)
            rows.append({"dicom_id": d, "region_index": r, "phrase": SENTENCES[rng.integers(len(SENTENCES))] if has
                         else "", "has_sentence": has})
    return pd.DataFrame(rows)


def _train_once(gpt2_dir, tmp_path, tag, epochs=2, lr=1e-2):
    torch.manual_seed(0)
    generator = build_generator(str(gpt2_dir), feature_dim=FEATURE_DIM, hidden_dim=16)
    selector = StandInSelector()
    train_ids, valid_ids = [f"t{i}" for i in range(6)], [f"v{i}" for i in range(3)]
    regions = _fake_regions(train_ids + valid_ids, 0)
    data = {name: build_sentence_data(_fake_features(tmp_path, f"{tag}_{name}", ids, k), regions, selector,
                                      generator.tokenizer, max_tokens=24, device=torch.device("cpu"))
            for k, (name, ids) in enumerate((("train", train_ids), ("valid", valid_ids)))}
    schedule = Schedule(epochs=epochs, batch_size=2, lr=lr, weight_decay=0.0, factor=0.5, cooldown=0, patience=2)
    trainer = GeneratorTrainer(generator, data["train"], data["valid"], schedule, freeze_gpt2=False, seed=0,
                               device=torch.device("cpu"), progress=False)
    reset_stale_checkpoint(tmp_path / f"ckpt_{tag}", trainer.fingerprint())  # as train_generator does
    history = trainer.fit(tmp_path / f"ckpt_{tag}", tmp_path / f"metrics_{tag}.tsv")
    generator.eval()
    return generator, history, data


@pytest.fixture(scope="module")
def trained(gpt2_dir, tmp_path_factory):
    folder = tmp_path_factory.mktemp("train")
    generator, history, data = _train_once(gpt2_dir, folder, "full", epochs=2)
    return generator, history, data, folder


def test_training_lowers_loss_and_is_deterministic(gpt2_dir, trained, tmp_path):
    first, history, data, folder = trained
    second, _, _ = _train_once(gpt2_dir, tmp_path, "again", epochs=2)
    assert isinstance(data["train"], SentenceData) and data["train"].n_sentences > 0
    rows = pd.read_csv(folder / "metrics_full.tsv", sep="\t")
    assert list(rows["epoch"]) == [0, 1] and rows["train_loss"].iloc[-1] < rows["train_loss"].iloc[0]
    for (name, a), b in zip(first.state_dict().items(), second.state_dict().values()):
        assert torch.equal(a, b), name


def _kill_in_epoch(monkeypatch, epoch_to_kill):
    """Make the generator's training raise when it reaches epoch ``epoch_to_kill`` (a killed job)."""
    import crrg_clip.train.generator as module

    real = module.epoch_batches

    def dying(*args, **kwargs):
        if kwargs.get("shuffle", True) and kwargs["epoch"] == epoch_to_kill:
            raise KeyboardInterrupt("killed")
        return real(*args, **kwargs)

    monkeypatch.setattr(module, "epoch_batches", dying)


def test_training_resumes_to_the_same_weights(gpt2_dir, trained, tmp_path, monkeypatch, caplog):
    full = trained[0]
    with monkeypatch.context() as patch:
        _kill_in_epoch(patch, 1)
        with pytest.raises(KeyboardInterrupt):
            _train_once(gpt2_dir, tmp_path, "part", epochs=2)
    assert (tmp_path / "ckpt_part" / "last.pt").exists()  # the killed run left its epoch-0 checkpoint
    with caplog.at_level("INFO", logger="crrg_clip.train.loop"):
        resumed, history, _ = _train_once(gpt2_dir, tmp_path, "part", epochs=2)
    assert "resuming" in caplog.text
    assert len(history.rows) == 2
    for (name, a), b in zip(full.state_dict().items(), resumed.state_dict().values()):
        assert torch.equal(a, b), name


def test_rerun_with_other_settings_does_not_resume(gpt2_dir, tmp_path, monkeypatch, caplog):
    with monkeypatch.context() as patch:
        _kill_in_epoch(patch, 1)
        with pytest.raises(KeyboardInterrupt):
            _train_once(gpt2_dir, tmp_path, "stale", epochs=2, lr=1e-2)
    with caplog.at_level("INFO", logger="crrg_clip.train.loop"):
        rerun, history, _ = _train_once(gpt2_dir, tmp_path, "stale", epochs=2, lr=3e-3)
    assert "resuming" not in caplog.text
    assert [row["lr"] for row in history.rows][0] == pytest.approx(3e-3)
    fresh, _, _ = _train_once(gpt2_dir, tmp_path, "fresh", epochs=2, lr=3e-3)
    for (name, a), b in zip(fresh.state_dict().items(), rerun.state_dict().values()):
        assert torch.equal(a, b), name


def test_sentence_data_leaves_out_undetected_regions_and_counts_them(gpt2_dir, tmp_path):
    ids = [f"t{i}" for i in range(5)]
    features = _fake_features(tmp_path, "detected", ids, 3)
    features["detected"][0] = 0  # image t0: nothing detected
    regions = _fake_regions(ids, 3)
    regions.loc[(regions["dicom_id"] == "t1") & (regions["region_index"] == 0), ["phrase", "has_sentence"]] = ["  ", True]
    tokenizer = build_generator(str(gpt2_dir), feature_dim=FEATURE_DIM, hidden_dim=16).tokenizer
    data = build_sentence_data(features, regions, StandInSelector(), tokenizer, max_tokens=24,
                               device=torch.device("cpu"))
    row_of = {d: i for i, d in enumerate(features["dicom_id"])}
    for dicom_id, items in zip(data.dicom_ids, data.items):
        assert all(bool(features["detected"][row_of[dicom_id], r]) for r, _ in items)
    with_sentence = regions[regions["has_sentence"] & (regions["phrase"].str.strip() != "")]
    undetected = sum(not bool(features["detected"][row_of[d], r])
                     for d, r in zip(with_sentence["dicom_id"], with_sentence["region_index"]))
    assert undetected > 0 and data.left_out["sentences_of_undetected_regions"] == undetected
    assert data.left_out["blank_phrases_flagged_has_sentence"] == 1
    assert "t0" in data.left_out["images_without_a_target"] and "t0" not in data.dicom_ids
    assert data.n_sentences == len(with_sentence) - undetected


def test_predict_regions_and_reports(gpt2_dir, tmp_path):
    generator = make_generator(gpt2_dir)
    dicom_ids = ["x1", "x2", "x3"]
    region_features = _fake_features(tmp_path, "test", dicom_ids, 5)
    regions = _fake_regions(dicom_ids, 1)
    references = {(d, r): p for d, r, p, h in regions[["dicom_id", "region_index", "phrase", "has_sentence"]]
                  .itertuples(index=False) if h}
    predictions = predict_regions(generator, StandInSelector(), region_features, references, num_beams=2,
                                  max_new_tokens=6, batch_size=7, device=torch.device("cpu"), progress=False)
    assert list(predictions.columns) == PREDICTION_COLUMNS and len(predictions) == 3 * NUM_REGIONS
    assert (predictions["generated_sentence"][~predictions["selected"]] == "").all()
    assert not (predictions["selected"] & ~predictions["detected"]).any()  # undetected is never selected
    expected_selected = (region_features["features"][..., 0].float() > 0) & region_features["detected"].bool()
    assert predictions["selected"].tolist() == expected_selected.reshape(-1).tolist()
    row = predictions.iloc[NUM_REGIONS + 4]
    assert row["dicom_id"] == "x2" and row["region_index"] == 4
    assert row["reference_sentence"] == references.get(("x2", 4), "")
    # each selected region's sentence equals generating for it alone
    chosen = predictions[predictions["selected"]].iloc[0]
    image = dicom_ids.index(chosen["dicom_id"])
    feature = StandInSelector().project(region_features["features"][image:image + 1].float())[0, chosen["region_index"]]
    assert generator.generate_sentences(feature[None], num_beams=2, max_new_tokens=6)[0] == chosen["generated_sentence"]
    images = pd.DataFrame({"dicom_id": dicom_ids, "findings": ["a.", "b.", None]})
    reports = reports_frame(predictions, images, similarity="token_f1", threshold=0.9)
    assert list(reports.columns) == ["dicom_id", "report", "reference"]
    assert reports["dicom_id"].tolist() == dicom_ids and reports["reference"].tolist() == ["a.", "b.", ""]


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_generate_on_cuda_matches_manual_loop_and_single_items(gpt2_dir):
    generator = make_generator(gpt2_dir).to("cuda")
    torch.manual_seed(6)
    features = torch.randn(4, FEATURE_DIM, device="cuda")
    generated = generator.generate(features, num_beams=1, max_new_tokens=8).cpu()
    expected = manual_greedy(generator, features, generated.shape[1]).cpu()
    eos = generator.eos_token_id
    for row, want in zip(generated.tolist(), expected.tolist()):
        end = want.index(eos) + 1 if eos in want else len(want)
        assert row[:end] == want[:end]
    together = generator.generate(features, num_beams=3, max_new_tokens=6)
    for i in range(4):
        alone = generator.generate(features[i:i + 1], num_beams=3, max_new_tokens=6)
        assert together[i, :alone.shape[1]].tolist() == alone[0].tolist()
    generator.to(torch.bfloat16)  # the rules' bf16 inference path runs end to end
    assert len(generator.generate_sentences(features.bfloat16(), num_beams=2, max_new_tokens=6)) == 4


def test_predictions_mark_fallback_and_give_original_pixel_boxes(gpt2_dir, tmp_path):
    """Issue 14 items 22(a) and 25: the fallback pick is flagged, and boxes come in original pixels too."""
    from crrg_clip.generate import ORIGINAL_BOX_COLUMNS

    generator = make_generator(gpt2_dir)
    dicom_ids = ["x1", "x2"]
    region_features = _fake_features(tmp_path, "test", dicom_ids, 5)
    region_features["features"][1, :, 0] = -1.0  # x2: no region passes the threshold
    region_features["features"][1, 3, 0] = -0.5  # its best logit, at region 3
    region_features["detected"][1] = 1
    cache_index = pd.DataFrame({"dicom_id": ["x2", "x1"], "scale": [0.5, 0.25], "pad_x": [10.0, 0.0],
                                "pad_y": [0.0, 20.0], "width": [1000, 1000], "height": [1000, 1000]})
    predictions = predict_regions(generator, StandInSelector(), region_features, None, num_beams=1,
                                  max_new_tokens=3, batch_size=8, device=torch.device("cpu"), progress=False,
                                  cache_index=cache_index)
    x2 = predictions[predictions["dicom_id"] == "x2"]
    assert x2["selected"].tolist() == [r == 3 for r in range(NUM_REGIONS)]
    assert x2["fallback"].tolist() == [r == 3 for r in range(NUM_REGIONS)]
    assert not predictions.loc[predictions["dicom_id"] == "x1", "fallback"].any()
    box = region_features["boxes"][1, 3].tolist()
    expected = [(box[0] - 10) / 0.5, box[1] / 0.5, (box[2] - 10) / 0.5, box[3] / 0.5]
    assert x2.iloc[3][ORIGINAL_BOX_COLUMNS].astype(float).tolist() == pytest.approx(expected, abs=1e-4)
    x1 = predictions[predictions["dicom_id"] == "x1"]
    undetected = ~x1["detected"].to_numpy()
    assert undetected.any() and x1.loc[undetected, ORIGINAL_BOX_COLUMNS].isna().all().all()
    inside = x1[x1["detected"] & (x1["y1"] > 20)].iloc[0]
    assert inside["x1_orig"] == pytest.approx(inside["x1"] / 0.25, abs=1e-4)
    assert inside["y1_orig"] == pytest.approx((inside["y1"] - 20) / 0.25, abs=1e-4)
    in_padding = x1[x1["detected"] & (x1["y1"] < 20)]
    assert len(in_padding) and (in_padding["y1_orig"] == 0).all()  # clipped to the image


def test_from_pretrained_is_eval_mode_with_its_config_and_checks_the_folder(gpt2_dir, tmp_path):
    from crrg_clip.modelio import KindError
    from crrg_clip.models.selector import RegionSelector, SelectorConfig

    make_generator(gpt2_dir).save_pretrained(tmp_path / "generator", extra={"input": "detector_features"})
    loaded = RegionGenerator.from_pretrained(tmp_path / "generator")
    assert not any(m.training for m in loaded.modules()) and loaded.tokenizer is not None
    assert loaded.input_kind == loaded.folder_config["input"] == "detector_features"
    # generator folders record no kind: a folder that has one is another model's
    RegionSelector(SelectorConfig(in_channels=4)).save_pretrained(tmp_path / "selector")
    with pytest.raises(KindError, match=r"selector/config.json: kind 'rrg_region_selector', expected no kind"):
        RegionGenerator.from_pretrained(tmp_path / "selector")


def test_detector_features_input_is_standardised_with_the_selectors_statistics(gpt2_dir, tmp_path, monkeypatch):
    """Training (generator_inputs) and inference (predict_regions) condition on the same standardised features."""
    import crrg_clip.generate as generate_module
    from crrg_clip.models.selector import RegionSelector, SelectorConfig
    from crrg_clip.train.generator import generator_inputs

    ids = ["s1", "s2", "s3"]
    features = _fake_features(tmp_path, "std", ids, 4)
    selector = RegionSelector(SelectorConfig(in_channels=features["features"].shape[-1], region_feature_dim=8,
                                             hidden=[8, 4]))
    raw = features["features"].float()  # (I, R, C)
    selector.fit_standardization(raw + 3.0, features["detected"])  # statistics far from identity
    expected = (raw - selector.feature_mean) / selector.feature_std
    trained_on = generator_inputs(features, selector, "detector_features", torch.device("cpu"))
    torch.testing.assert_close(trained_on, expected)
    assert not torch.allclose(trained_on, raw)

    seen = []
    monkeypatch.setattr(generate_module, "generate_for_pairs",
                        lambda generator, chosen, **kw: seen.append(chosen) or ["x"] * len(chosen))
    generator = make_generator(gpt2_dir)
    generator.input_kind = "detector_features"
    predictions = generate_module.predict_regions(generator, selector, features, None, num_beams=1,
                                                  max_new_tokens=4, batch_size=4, device=torch.device("cpu"),
                                                  progress=False)
    chosen = predictions["selected"].to_numpy(dtype=bool).reshape(len(ids), -1)
    torch.testing.assert_close(seen[0], expected[torch.tensor(chosen)])
