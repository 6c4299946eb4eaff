"""Back-translation: fallback rules, uniqueness, length sorting, cache reuse, determinism."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from crrg_clip import backtranslate as bt
from crrg_clip.models import demo_marian as dm

SETTINGS = bt.TranslationRequests(num_beams=2, do_sample=True, temperature=0.7, batch_size=3, max_length=32, seed=0)
TEXTS = [
    "The heart size is normal.",
    "No pleural effusion or pneumothorax is seen.",
    "Mild cardiomegaly.",
    "There is a small left pleural effusion with adjacent atelectasis at the base.",
    "The lungs are clear.",
    "Patchy opacity in the right lower lobe may reflect pneumonia.",
    "No acute osseous abnormality.",
]


class FakeTranslator:
    """Reverses each word (so forward then backward gives the input back), recording calls;
    ``overrides`` replaces the output for chosen inputs."""

    def __init__(self, identity="fake", overrides=None):
        self.identity = identity
        self.overrides = overrides or {}
        self.batches: list[list[str]] = []

    def length(self, texts):
        return [len(t.split()) for t in texts]

    def translate_batch(self, texts):
        self.batches.append(list(texts))
        out = []
        for text in texts:
            if text in self.overrides:
                out.append(self.overrides[text])
            else:
                out.append(bt.Translation(" ".join(w[::-1] for w in text.split()), False))
        return out

    @property
    def seen(self):
        return [t for batch in self.batches for t in batch]


def forward_of(text):
    return " ".join(w[::-1] for w in text.split())


# --- fallback rules -------------------------------------------------------------------------

@pytest.mark.parametrize("original, back, truncated, expected", [
    ("the heart is normal", "the heart is normal", False, bt.OK),
    ("   ", "", False, bt.EMPTY_INPUT),
    ("the heart is normal", "  ", False, bt.EMPTY),
    ("the heart is normal", "the heart is", True, bt.TRUNCATED),
    ("the heart size is normal today", "heart", False, bt.TOO_SHORT),
    ("the heart", "the heart is very very large and", False, bt.TOO_LONG),
    ("a b c d e f g h i j", "a b c a b c a b c a", False, bt.REPEATED),
])
def test_each_fallback_rule(original, back, truncated, expected):
    assert bt.check_back_translation(original, back, truncated, bt.Checks()) == expected


def test_repeated_ngram_fraction():
    assert bt.repeated_ngram_fraction("a b c d", 3) == 0.0
    assert bt.repeated_ngram_fraction("a b", 3) == 0.0
    # a b c a b c a b: 6 trigrams, 3 distinct -> half repeat
    assert bt.repeated_ngram_fraction("a b c a b c a b", 3) == pytest.approx(0.5)
    assert bt.repeated_ngram_fraction("x x x x x", 3) == pytest.approx(2 / 3)


def test_degenerate_outputs_fall_back_to_the_original_and_are_counted():
    ok, empty, trunc, short, long_, rep = TEXTS[0], TEXTS[1], TEXTS[3], TEXTS[5], TEXTS[2], TEXTS[4]
    backward = FakeTranslator("back", overrides={
        forward_of(empty): bt.Translation("", False),
        forward_of(trunc): bt.Translation("There is a small left", True),
        forward_of(short): bt.Translation("Patchy.", False),
        forward_of(long_): bt.Translation("Mild cardiomegaly is seen here today on this film.", False),
        forward_of(rep): bt.Translation("clear clear clear clear clear", False),
    })
    result = bt.back_translate([ok, empty, trunc, short, long_, rep, ""], FakeTranslator(), backward, SETTINGS)
    status = dict(zip(result.table["text"], result.table["status"]))
    assert status == {ok: bt.OK, empty: bt.EMPTY, trunc: bt.TRUNCATED, short: bt.TOO_SHORT,
                      long_: bt.TOO_LONG, rep: bt.REPEATED, "": bt.EMPTY_INPUT}
    fallbacks = result.table[result.table["status"] != bt.OK]
    assert (fallbacks["back_translation"] == fallbacks["text"]).all()
    assert result.counts == {bt.OK: 1, bt.EMPTY: 1, bt.TRUNCATED: 1, bt.TOO_SHORT: 1, bt.TOO_LONG: 1,
                             bt.REPEATED: 1, bt.EMPTY_INPUT: 1}
    table = bt.counts_table(result.counts)
    assert list(table.columns) == ["reason", "count", "unit"] and table["count"].sum() == 7
    assert set(table["unit"]) == {"report"}


def test_sentence_unit_translates_each_unique_sentence_once_and_falls_back_per_sentence():
    shared = "No acute osseous abnormality."
    first = f"The heart size is normal.  {shared}"
    second = f"Patchy opacity in the right lower lobe may reflect pneumonia. {shared}"
    bad = "Patchy opacity in the right lower lobe may reflect pneumonia."
    forward = FakeTranslator()
    backward = FakeTranslator("back", overrides={forward_of(bad): bt.Translation("", False)})
    result = bt.back_translate_units([first, second, first], forward, backward, SETTINGS, unit="sentence")
    # three unique sentences, each sent once, none of them a whole text
    assert sorted(forward.seen) == sorted(["The heart size is normal.", shared, bad])
    rows = result.table.set_index("text")
    assert list(rows.index) == [first, second]
    assert rows.loc[first, "back_translation"] == f"The heart size is normal. {shared}"
    assert rows.loc[first, "status"] == bt.OK
    # the empty sentence falls back alone: the text keeps its other sentence's translation
    assert rows.loc[second, "status"] == bt.EMPTY
    assert rows.loc[second, "back_translation"] == f"{bad} {shared}"
    assert result.counts == {bt.OK: 2, bt.EMPTY: 1}
    assert set(bt.counts_table(result.counts, "sentence")["unit"]) == {"sentence"}


def test_report_unit_is_plain_back_translate_and_unknown_unit_is_refused():
    forward = FakeTranslator()
    result = bt.back_translate_units(TEXTS[:2], forward, FakeTranslator(), SETTINGS, unit="report")
    assert sorted(forward.seen) == sorted(TEXTS[:2])
    with pytest.raises(ValueError, match="unit 'word'"):
        bt.back_translate_units(TEXTS[:2], FakeTranslator(), FakeTranslator(), SETTINGS, unit="word")


def test_split_sentences():
    assert bt.split_sentences(" A b.  C d?\nE f!  ") == ["A b.", "C d?", "E f!"]
    assert bt.split_sentences("   ") == []


def test_truncated_forward_leg_falls_back():
    forward = FakeTranslator(overrides={TEXTS[0]: bt.Translation(forward_of(TEXTS[0]), True)})
    result = bt.back_translate(TEXTS[:2], forward, FakeTranslator(), SETTINGS)
    assert list(result.table["status"]) == [bt.TRUNCATED, bt.OK]


def test_empty_intermediate_is_not_translated_back():
    forward = FakeTranslator(overrides={TEXTS[0]: bt.Translation("", False)})
    backward = FakeTranslator()
    result = bt.back_translate(TEXTS[:2], forward, backward, SETTINGS)
    assert list(result.table["status"]) == [bt.EMPTY, bt.OK]
    assert backward.seen == [forward_of(TEXTS[1])]


# --- uniqueness and sorting -------------------------------------------------------------------

def test_each_unique_text_is_translated_once():
    texts = TEXTS + TEXTS[::-1] + [TEXTS[0]] * 5
    forward, backward = FakeTranslator(), FakeTranslator()
    result = bt.back_translate(texts, forward, backward, SETTINGS)
    assert sorted(forward.seen) == sorted(TEXTS)
    assert sorted(backward.seen) == sorted(forward_of(t) for t in TEXTS)
    assert list(result.table["text"]) == TEXTS  # one row per unique text, first-seen order
    assert (result.table["back_translation"] == result.table["text"]).all()  # the fake round-trips
    assert result.translated == len(TEXTS) and result.cached == 0


def test_batches_are_length_sorted_and_results_in_input_order():
    forward = FakeTranslator()
    out = bt.translate_sorted(TEXTS, forward, batch_size=3)
    assert [o.text for o in out] == [forward_of(t) for t in TEXTS]
    lengths = [[len(t.split()) for t in batch] for batch in forward.batches]
    assert [len(b) for b in lengths] == [3, 3, 1]
    flat = [n for batch in lengths for n in batch]
    assert flat == sorted(flat, reverse=True)


def test_bad_batch_size_is_refused():
    with pytest.raises(ValueError, match="batch_size"):
        bt.translate_sorted(TEXTS, FakeTranslator(), batch_size=0)


# --- cache ------------------------------------------------------------------------------------

def test_cache_reuse_across_runs_and_sources(tmp_path):
    path = tmp_path / "cache" / "bt.sqlite"
    beams = bt.TranslationRequests(**{**SETTINGS.__dict__, "do_sample": False})  # deterministic decoding
    first = bt.back_translate(TEXTS[:4], FakeTranslator(), FakeTranslator(), beams, cache=bt.TranslationCache(path))
    assert first.translated == 4

    # a rerun (or the other text source) sharing texts translates only the new ones
    forward, backward = FakeTranslator(), FakeTranslator()
    second = bt.back_translate(TEXTS, forward, backward, beams, cache=bt.TranslationCache(path))
    assert second.cached == 4 and second.translated == len(TEXTS) - 4
    assert sorted(forward.seen) == sorted(TEXTS[4:])
    assert second.table.set_index("text").loc[TEXTS[:4]].equals(first.table.set_index("text"))

    # tighter checks re-check cached translations without translating again
    forward = FakeTranslator()
    strict = bt.back_translate(TEXTS, forward, FakeTranslator(), beams, bt.Checks(max_length_ratio=1.0,
                               min_length_ratio=1.0), cache=bt.TranslationCache(path))
    assert forward.seen == [] and strict.cached == len(TEXTS)

    # everything the output depends on keys the cache: the models, the temperature, the batch size
    # (padding and the sampling stream change with the grouping), the device and the library versions
    other_device = FakeTranslator()
    other_device.runtime = {"device": "cuda:NVIDIA H200", "torch": "x", "transformers": "y"}
    for fwd, settings in ((FakeTranslator("other-model"), beams),
                          (FakeTranslator(), bt.TranslationRequests(**{**beams.__dict__, "temperature": 1.0})),
                          (FakeTranslator(), bt.TranslationRequests(**{**beams.__dict__, "batch_size": 64})),
                          (other_device, beams)):
        bt.back_translate(TEXTS, fwd, FakeTranslator(), settings, cache=bt.TranslationCache(path))
        assert sorted(fwd.seen) == sorted(TEXTS)


def test_sampled_translations_are_reused_only_for_the_same_request(tmp_path):
    """A sampled output depends on the whole request, so reusing it for another set of texts
    would make results depend on what ran before; a rerun of the same request is cached."""
    path = tmp_path / "bt.sqlite"
    bt.back_translate(TEXTS[:4], FakeTranslator(), FakeTranslator(), SETTINGS, cache=bt.TranslationCache(path))
    forward = FakeTranslator()
    bt.back_translate(TEXTS, forward, FakeTranslator(), SETTINGS, cache=bt.TranslationCache(path))
    assert sorted(forward.seen) == sorted(TEXTS)  # a different request: nothing reused
    forward = FakeTranslator()
    rerun = bt.back_translate(TEXTS, forward, FakeTranslator(), SETTINGS, cache=bt.TranslationCache(path))
    assert forward.seen == [] and rerun.cached == len(TEXTS)


def test_model_identity_hashes_folder_contents(tmp_path):
    (tmp_path / "config.json").write_text("{}")
    first = bt.model_identity(str(tmp_path))
    assert first.startswith("sha256:") and first == bt.model_identity(str(tmp_path))
    (tmp_path / "config.json").write_text('{"d_model": 8}')
    assert bt.model_identity(str(tmp_path)) != first
    assert bt.model_identity("Helsinki-NLP/opus-mt-en-it") == "hub:Helsinki-NLP/opus-mt-en-it"


# --- the demo Marian pair and a real model ------------------------------------------------------

CORPUS = [" ".join(TEXTS[i % len(TEXTS)] for i in range(k, k + 3)) for k in range(12)]


def test_lexicon_is_one_to_one_and_round_trips():
    lexicon = dm.build_lexicon(CORPUS)
    assert lexicon == dm.build_lexicon(CORPUS)  # deterministic
    assert len(set(lexicon.values())) == len(lexicon)
    assert not set(lexicon.values()) & set(lexicon)
    inverse = dm.invert_lexicon(lexicon)
    for text in CORPUS:
        italian = dm.apply_lexicon(text, lexicon)
        assert italian != text and dm.apply_lexicon(italian, inverse) == text
    accented = {"is": "è", "opacity": "opacità"}
    assert dm.apply_lexicon(dm.apply_lexicon("Opacity is", accented), dm.invert_lexicon(accented)) == "Opacity is"
    with pytest.raises(ValueError, match="one-to-one"):
        dm.invert_lexicon({"a": "x", "b": "x"})


@pytest.fixture(scope="module")
def demo_pair(tmp_path_factory):
    root = tmp_path_factory.mktemp("marian")
    torch.set_num_threads(1)
    summary = dm.build_demo_marian_pair(CORPUS, root / "en_it", root / "it_en", vocab_size=200, sizes={},
                                        train_steps=3, seed=0, batch_size=4, max_length=32)
    return root, summary


def test_demo_pair_loads_with_from_pretrained(demo_pair):
    from transformers import MarianMTModel, MarianTokenizer

    root, summary = demo_pair
    assert summary["models"]["en_it"]["steps"] == 3
    for name in ("en_it", "it_en"):
        folder = root / name
        for file in ("source.spm", "target.spm", "vocab.json", "tokenizer_config.json", "config.json",
                     "model.safetensors", "lexicon.json"):
            assert (folder / file).exists(), file
        tokenizer = MarianTokenizer.from_pretrained(str(folder))
        model = MarianMTModel.from_pretrained(str(folder))
        assert model.config.pad_token_id == len(tokenizer) - 1 == model.config.decoder_start_token_id
        ids = tokenizer(["The heart size is normal."])["input_ids"][0]
        assert ids[-1] == tokenizer.eos_token_id
        if name == "en_it":  # English is the source side: every piece is in the vocabulary
            assert tokenizer.unk_token_id not in ids
    en = MarianTokenizer.from_pretrained(str(root / "en_it"))
    text = "The heart size is normal."
    assert en.decode(en(text)["input_ids"], skip_special_tokens=True, use_source_tokenizer=True) == text


def test_marian_back_translation_is_deterministic_with_a_seed(demo_pair):
    root, _ = demo_pair

    def run(seed, max_length=32):
        settings = bt.TranslationRequests(num_beams=2, do_sample=True, temperature=1.5, batch_size=4,
                                         max_length=max_length, seed=seed)
        forward = bt.MarianTranslator(str(root / "en_it"), "cpu", settings)
        backward = bt.MarianTranslator(str(root / "it_en"), "cpu", settings)
        return bt.back_translate(TEXTS, forward, backward, settings), forward

    first, forward = run(0)
    assert forward.calls == 2  # 7 unique texts in batches of 4
    again, _ = run(0)
    assert first.table.equals(again.table)
    assert set(first.table.columns) == {"text", "back_translation", "status"}
    assert len(first.table) == len(TEXTS)


def test_marian_translator_flags_truncation(demo_pair):
    """opus-mt (and the demo pair) force </s> at max_length, so every output "has an EOS":
    truncation shows as an output that reaches max_length. forced_eos_token_id stays on."""
    root, _ = demo_pair
    settings = bt.TranslationRequests(num_beams=1, do_sample=False, batch_size=4, max_length=8, seed=0)
    translator = bt.MarianTranslator(str(root / "en_it"), "cpu", settings)
    assert translator.model.generation_config.forced_eos_token_id == translator.eos_id
    # an undertrained model keeps going; blocking </s> before the end makes sure it reaches max_length
    translator.model.generation_config.bad_words_ids = [[translator.model.config.pad_token_id]]
    translator.model.generation_config.suppress_tokens = None
    translator.model.generation_config.begin_suppress_tokens = None
    translator.model.generation_config.min_length = 8
    out = translator.translate_batch(TEXTS[:2])
    assert all(t.truncated for t in out)


def test_reaching_max_length_is_truncation_even_with_a_forced_eos():
    eos, pad = 2, 9
    out = torch.tensor([[pad, 5, 6, eos, pad, pad],   # ended on its own
                        [pad, 5, 6, 7, 8, eos],       # </s> forced at the last position: cut off
                        [pad, 5, 6, 7, 8, 4]])        # no </s> at all
    assert bt.reached_max_length(out, eos, max_length=6) == [False, True, True]
    assert bt.reached_max_length(out[:, :4], eos, max_length=6) == [False, True, True]  # shorter batch: row 1 unfinished


def test_marian_translator_records_inputs_cut_by_the_tokenizer(demo_pair):
    root, _ = demo_pair
    settings = bt.TranslationRequests(num_beams=1, do_sample=False, batch_size=4, max_length=8, seed=0)
    translator = bt.MarianTranslator(str(root / "en_it"), "cpu", settings)
    short, long_ = "Mild cardiomegaly.", TEXTS[3]
    n_short, n_long = (len(translator.tokenizer(t)["input_ids"]) for t in (short, long_))
    assert n_long > n_short
    translator.settings = dataclasses.replace(settings, max_length=max(8, n_short))  # fits short, cuts long
    out = translator.translate_batch([short, long_])
    assert [t.input_truncated for t in out] == [False, True]


def test_an_input_cut_at_max_length_falls_back_and_is_counted():
    text = TEXTS[3]
    forward = FakeTranslator(overrides={text: bt.Translation(forward_of(text), False, input_truncated=True)})
    result = bt.back_translate([text, TEXTS[0]], forward, FakeTranslator(), SETTINGS)
    status = result.table.set_index("text")["status"]
    assert status[text] == bt.INPUT_TRUNCATED and status[TEXTS[0]] == bt.OK
    assert result.counts == {bt.INPUT_TRUNCATED: 1, bt.OK: 1}


SENTENCES = [f"{template.format(side=side)}" for side in ("right", "left") for template in (
    "The {side} lung is clear.", "No {side} pleural effusion.", "No {side} pneumothorax is seen.",
    "Small {side} pleural effusion is present.", "There is a moderate {side} pneumothorax.",
    "Focal consolidation in the {side} mid lung is concerning for pneumonia.",
    "There is a patchy opacity in the {side} upper lung.",
)] + ["The cardiac silhouette is within normal limits.", "Moderate cardiomegaly is present."]


def test_sentence_segments_leave_out_whole_texts():
    text = "The right lung is clear. No right pleural effusion."
    assert dm.training_segments([text], "sentence") == ["The right lung is clear.", "No right pleural effusion."]
    assert dm.training_segments([text], "report") == [text, "The right lung is clear.", "No right pleural effusion."]


@pytest.mark.slow
def test_demo_pair_trained_on_sentences_round_trips_them(tmp_path):
    """The demo's back-translation must keep the findings: most sentences come back exactly."""
    torch.set_num_threads(1)
    reports = [" ".join(SENTENCES[i::3]) for i in range(3)]
    dm.build_demo_marian_pair(reports, tmp_path / "en_it", tmp_path / "it_en", vocab_size=200, sizes={},
                              train_steps=400, seed=0, batch_size=32, max_length=64, unit="sentence")
    settings = bt.TranslationRequests(num_beams=1, do_sample=False, batch_size=32, max_length=64, seed=0)
    forward = bt.MarianTranslator(str(tmp_path / "en_it"), "cpu", settings)
    backward = bt.MarianTranslator(str(tmp_path / "it_en"), "cpu", settings)
    result = bt.back_translate(SENTENCES, forward, backward, settings)
    exact = (result.table["back_translation"] == result.table["text"]) & (result.table["status"] == bt.OK)
    assert exact.mean() >= 0.8, result.table[~exact].to_string()
