"""The optional CheXbert labeler's error paths (the package and weights are not installed
in CI), plus a smoke run on a tiny random network where f1chexbert is installed."""

from __future__ import annotations

import sys

import pytest

from crrg_clip.evaluate.chexbert import BERT_DIR_KEY, CHECKPOINT_KEY, load_chexbert_labeler


@pytest.mark.parametrize("value", [None, ""])
def test_unset_checkpoint_names_the_key(value):
    with pytest.raises(ValueError, match=CHECKPOINT_KEY):
        load_chexbert_labeler(value)


def test_missing_checkpoint_names_key_and_path(tmp_path):
    path = tmp_path / "nowhere" / "chexbert.pth"
    with pytest.raises(FileNotFoundError) as err:
        load_chexbert_labeler(path)
    assert CHECKPOINT_KEY in str(err.value) and str(path) in str(err.value)


def test_missing_package_is_a_config_error(tmp_path, monkeypatch):
    checkpoint = tmp_path / "chexbert.pth"
    checkpoint.write_bytes(b"not used")
    monkeypatch.setitem(sys.modules, "f1chexbert", None)  # import fails as if not installed
    monkeypatch.setitem(sys.modules, "f1chexbert.f1chexbert", None)
    with pytest.raises(ValueError, match="f1chexbert is not installed"):
        load_chexbert_labeler(checkpoint)


def test_missing_bert_dir_names_its_key(tmp_path):
    pytest.importorskip("f1chexbert")
    checkpoint = tmp_path / "chexbert.pth"
    checkpoint.write_bytes(b"not used")
    with pytest.raises(FileNotFoundError, match=BERT_DIR_KEY):
        load_chexbert_labeler(checkpoint, bert_dir=tmp_path / "no-bert")


def test_tiny_random_chexbert_labels_offline(tmp_path):
    f1chexbert = pytest.importorskip("f1chexbert.f1chexbert")
    from unittest import mock

    import torch
    from transformers import BertConfig

    bert = tmp_path / "bert-base-uncased"
    bert.mkdir()
    words = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "no", "effusion", "."]
    (bert / "vocab.txt").write_text("\n".join(words) + "\n")
    config = BertConfig(vocab_size=len(words), hidden_size=16, num_hidden_layers=1,
                        num_attention_heads=2, intermediate_size=32)
    config.save_pretrained(bert)
    with mock.patch.object(f1chexbert.AutoConfig, "from_pretrained", return_value=config):
        net = f1chexbert.bert_labeler(inference=True)
    state = {"module." + k: v for k, v in net.state_dict().items()}
    torch.save({"model_state_dict": state}, tmp_path / "chexbert.pth")
    labeler = load_chexbert_labeler(tmp_path / "chexbert.pth")
    frame = labeler.label(["No effusion.", "", "No effusion."])
    assert labeler.name == "CheXbert" and frame.shape == (3, 14)
    assert frame.iloc[0].equals(frame.iloc[2])
