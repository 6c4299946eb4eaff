"""Report assembly: anatomical order, exact and near-duplicate removal, both similarities."""

import math

import pandas as pd
import pytest

from crrg_clip.report_assembly import (TfidfCosine, assemble_reports, assemble_sentences, make_similarity,
                                       token_f1)


def test_token_f1_against_hand_values():
    assert token_f1("The lungs are clear.", "the LUNGS are clear") == 1.0
    # 3 shared of 4 and 5 tokens: P = 3/4, R = 3/5
    assert token_f1("no pleural effusion seen", "no large pleural effusion present") == pytest.approx(
        2 * 0.75 * 0.6 / 1.35)
    assert token_f1("heart normal", "lungs clear") == 0.0
    assert token_f1("effusion effusion", "effusion") == pytest.approx(2 * 0.5 * 1.0 / 1.5)  # multisets


def test_tfidf_cosine_against_naive():
    corpus = ["heart is normal", "lungs are clear", "heart is enlarged"]
    score = TfidfCosine(corpus)
    n = 3
    idf = {"heart": math.log(4 / 3) + 1, "is": math.log(4 / 3) + 1, "normal": math.log(4 / 2) + 1,
           "enlarged": math.log(4 / 2) + 1}
    a = [idf["heart"], idf["is"], idf["normal"], 0.0]
    b = [idf["heart"], idf["is"], 0.0, idf["enlarged"]]
    dot = sum(x * y for x, y in zip(a, b))
    expected = dot / (math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b)))
    assert n == len(corpus) and score("heart is normal", "heart is enlarged") == pytest.approx(expected)
    assert score("lungs are clear", "Lungs are clear.") == pytest.approx(1.0)
    assert score("heart is normal", "lungs are clear") == 0.0


def test_exact_and_near_duplicates_are_dropped_in_order():
    sentences = ["The lungs are clear.", "", "the  lungs are clear.", "Heart size is normal.",
                 "The lungs are clear bilaterally.", "No pleural effusion."]
    kept = assemble_sentences(sentences, token_f1, 0.8)
    # exact (case/space-folded) duplicate and the near-duplicate (F1 = 8/9 > 0.8) go; order kept
    assert kept == ["The lungs are clear.", "Heart size is normal.", "No pleural effusion."]
    assert assemble_sentences(sentences, token_f1, 0.95) == [
        "The lungs are clear.", "Heart size is normal.", "The lungs are clear bilaterally.", "No pleural effusion."]


def test_threshold_is_strict():
    assert assemble_sentences(["a b", "a b c d"], token_f1, token_f1("a b c d", "a b")) == ["a b", "a b c d"]


def predictions():
    rows = [
        ("img1", 24, True, "Heart size is normal."),
        ("img1", 3, True, "Right lower lobe opacity."),
        ("img1", 11, False, "never used"),
        ("img1", 10, True, "Right lower lobe opacity."),
        ("img2", 5, False, ""),
        ("img3", 0, True, "The lungs are clear."),
        ("img3", 8, True, "The lungs are clear."),
        ("img3", 21, True, "the mediastinum is normal"),
    ]
    return pd.DataFrame(rows, columns=["dicom_id", "region_index", "selected", "generated_sentence"])


@pytest.mark.parametrize("similarity", ["token_f1", "tfidf_cosine"])
def test_reports_follow_region_order(similarity):
    reports = assemble_reports(predictions(), similarity=similarity, threshold=0.9)
    assert reports["dicom_id"].tolist() == ["img1", "img2", "img3"]  # an image with nothing selected stays
    assert reports["report"].tolist() == [
        "Right lower lobe opacity. Heart size is normal.",
        "",
        "The lungs are clear. the mediastinum is normal",
    ]


def test_requested_images_and_errors():
    reports = assemble_reports(predictions(), dicom_ids=["img3", "img9"])
    assert reports["dicom_id"].tolist() == ["img3", "img9"] and reports["report"].iloc[1] == ""
    with pytest.raises(ValueError, match="lack column"):
        assemble_reports(predictions().drop(columns="selected"))
    with pytest.raises(ValueError, match="unknown dedup similarity"):
        make_similarity("bertscore")


def test_every_image_gets_at_least_one_selected_region():
    import torch

    from crrg_clip.generate import at_least_one_selected

    logits = torch.tensor([[0.5, -3.0, -2.0], [-4.0, -1.5, -2.5], [-4.0, -1.5, -2.5]])
    selected = logits > -1.0
    detected = torch.tensor([[True, True, True], [True, True, True], [True, False, True]])
    out = at_least_one_selected(logits, selected, detected)
    assert out[0].tolist() == [True, False, False]  # already had one: unchanged
    assert out[1].tolist() == [False, True, False]  # best logit
    assert out[2].tolist() == [False, False, True]  # best among detected regions


def test_multi_sentence_region_texts_are_deduplicated_sentence_by_sentence():
    import pandas as pd

    from crrg_clip.report_assembly import assemble_reports, split_sentences

    assert split_sentences("No pneumothorax is seen.  A 2.2 cm nodule is seen.") == [
        "No pneumothorax is seen.", "A 2.2 cm nodule is seen."]
    predictions = pd.DataFrame({
        "dicom_id": ["a", "a", "a"],
        "region_index": [0, 2, 8],
        "selected": [True, True, True],
        "generated_sentence": ["No pneumothorax is seen. A 2.2 cm nodule is seen in the right mid lung.",
                               "A 2.2 cm nodule is seen in the right mid lung.",
                               "No pneumothorax is seen. The left lung is clear."],
    })
    report = assemble_reports(predictions)["report"].item()
    assert report == ("No pneumothorax is seen. A 2.2 cm nodule is seen in the right mid lung. "
                      "The left lung is clear.")


def test_fallback_never_selects_an_undetected_region():
    import torch

    from crrg_clip.generate import at_least_one_selected

    logits = torch.tensor([[-1.0, -2.0, -3.0], [-1.0, -2.0, -3.0]])
    selected = torch.zeros(2, 3, dtype=torch.bool)
    detected = torch.tensor([[False, False, False], [False, True, False]])
    out = at_least_one_selected(logits, selected, detected)
    assert out[0].tolist() == [False, False, False]  # nothing detected: an empty report, never a zero feature
    assert out[1].tolist() == [False, True, False]
