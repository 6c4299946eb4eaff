import math

import numpy as np
import pytest
from pycocoevalcap.bleu.bleu import Bleu
from pycocoevalcap.cider.cider import Cider

from crrg_clip.evaluate.nlg import (
    NLGEvaluator, TfidfSimilarity, ValidationDFCiderScorer, bleu_statistics, cider_scores,
    corpus_bleu, tokenize_rgrg,
)


def test_rgrg_tokenisation_only_splits_full_stops():
    assert tokenize_rgrg(["Heart is Normal. No effusion."]) == ["Heart is Normal . No effusion ."]


def test_bleu_by_hand():
    # hyp "a b c d" vs ref "a b c e": precisions 3/4, 2/3, 1/2, 0/1; equal lengths, no penalty
    stats = bleu_statistics(["a b c d"], ["a b c e"])
    assert stats.tolist() == [[4, 4, 4, 3, 2, 1, 3, 2, 1, 0]]
    bleu = corpus_bleu(stats.sum(axis=0))
    assert bleu[0] == pytest.approx(0.75)
    assert bleu[1] == pytest.approx(math.sqrt(0.75 * 2 / 3))
    assert bleu[2] == pytest.approx((0.75 * 2 / 3 * 0.5) ** (1 / 3))
    assert bleu[3] == pytest.approx(0.0, abs=1e-3)


def test_bleu_brevity_penalty_by_hand():
    bleu = corpus_bleu(bleu_statistics(["a b"], ["a b c d"]).sum(axis=0))
    assert bleu[0] == pytest.approx(math.exp(1 - 4 / 2))
    assert bleu[1] == pytest.approx(math.exp(1 - 4 / 2))


def test_corpus_bleu_matches_pycocoevalcap():
    hyps = ["the heart is normal .", "no effusion seen", "small left pleural effusion ."]
    refs = ["the heart size is normal .", "no pleural effusion .", "small left effusion is seen ."]
    expected, _ = Bleu(4).compute_score({i: [r] for i, r in enumerate(refs)},
                                        {i: [h] for i, h in enumerate(hyps)}, verbose=0)
    ours = corpus_bleu(bleu_statistics(hyps, refs).sum(axis=0))
    np.testing.assert_allclose(ours, expected, rtol=1e-12)


def test_cider_with_test_refs_as_df_equals_library_and_validation_df_changes_it():
    hyps = ["the heart is normal", "no effusion", "left effusion is small"]
    refs = ["the heart size is normal", "no pleural effusion", "small left effusion"]
    library, library_scores = Cider().compute_score({i: [r] for i, r in enumerate(refs)},
                                                    {i: [h] for i, h in enumerate(hyps)})
    same = cider_scores(hyps, refs, refs)
    np.testing.assert_allclose(same, library_scores)
    assert same.mean() == pytest.approx(library)
    other = cider_scores(hyps, refs, ["the lungs are clear", "no pneumothorax", "the heart is normal", "x y"])
    assert not np.allclose(other, same)


def test_validation_df_scorer_ignores_test_refs_for_df():
    scorer = ValidationDFCiderScorer([["a b"], ["c d"]])
    scorer += ("a b", ["a b"])
    scorer.compute_score()
    assert scorer.ref_len == pytest.approx(math.log(2))
    assert scorer.document_frequency[("a",)] == 1.0


def test_tfidf_cosine_matches_naive_numpy():
    train = ["heart normal", "heart enlarged effusion", "lungs clear", "effusion small"]
    hyps, refs = ["heart normal effusion", "lungs clear"], ["heart enlarged", "lungs clear clear"]
    vocab = sorted({w for t in train for w in t.split()})
    df = np.array([sum(w in t.split() for t in train) for w in vocab])
    idf = np.log((1 + len(train)) / (1 + df)) + 1  # scikit-learn's smoothed idf

    def vec(text):
        v = np.array([text.split().count(w) for w in vocab], float) * idf
        return v / np.linalg.norm(v) if np.linalg.norm(v) else v

    naive = [float(vec(h) @ vec(r)) for h, r in zip(hyps, refs)]
    np.testing.assert_allclose(TfidfSimilarity(train).scores(hyps, refs), naive, rtol=1e-9)


@pytest.fixture(scope="module")
def evaluator():
    refs = ["The heart size is normal. No pleural effusion.", "The lungs are clear.", "Small left effusion."]
    return NLGEvaluator("rgrg", validation_references=refs + ["No acute process."], training_references=refs)


def test_meteor_and_replicates(evaluator):
    from pycocoevalcap.meteor.meteor import Meteor

    hyps = ["The heart is normal. No effusion.", "Lungs are clear.", "There is a small left effusion."]
    refs = ["The heart size is normal. No pleural effusion.", "The lungs are clear.", "Small left effusion."]
    scores = evaluator.score(["a", "b", "c"], hyps, refs)
    point = evaluator.point(scores)
    library, _ = Meteor().compute_score({i: [r] for i, r in enumerate(tokenize_rgrg(refs))},
                                        {i: [h] for i, h in enumerate(tokenize_rgrg(hyps))})
    assert point["METEOR"] == pytest.approx(library)
    identity = np.arange(3)[None, :].repeat(2, axis=0)
    reps = evaluator.replicates(scores, identity)
    for name, value in point.items():
        np.testing.assert_allclose(reps[name], value, rtol=1e-9)
    one = evaluator.replicates(scores, np.array([[1, 1, 1]]))
    # "Lungs are clear ." vs "The lungs are clear .": case kept, 3 of 4 unigrams, length 4 vs 5
    assert one["BLEU1"][0] == pytest.approx(0.75 * math.exp(1 - 5 / 4))


# ----------------------------------------------------------------------------- CIDEr of the paper's code
def naive_uniform_idf_cider(hyp: str, ref: str, n: int = 4, sigma: float = 6.0) -> float:
    """CIDEr-D when every n-gram has the same IDF: 10 x mean over n of the clipped cosine of
    the n-gram count vectors, times the Gaussian length penalty."""
    from collections import Counter

    def grams(text, k):
        words = text.split()
        return Counter(tuple(words[i:i + k]) for i in range(len(words) - k + 1))

    total = 0.0
    for k in range(1, n + 1):
        h, r = grams(hyp, k), grams(ref, k)
        norm = math.sqrt(sum(v * v for v in h.values())) * math.sqrt(sum(v * v for v in r.values()))
        clipped = sum(min(h[g], r[g]) * r[g] for g in h)
        total += clipped / norm if norm else 0.0
    penalty = math.exp(-((len(hyp.split()) - len(ref.split())) ** 2) / (2 * sigma ** 2))
    return 10.0 * total / n * penalty


def test_paper_code_cider_is_uniform_idf_cider_d():
    from crrg_clip.evaluate.nlg import paper_code_cider_scores

    hyps = ["the heart is normal .", "no effusion", "left effusion is small ."]
    refs = ["the heart size is normal .", "no pleural effusion .", "small left effusion ."]
    ours = paper_code_cider_scores(hyps, refs)
    np.testing.assert_allclose(ours, [naive_uniform_idf_cider(h, r) for h, r in zip(hyps, refs)], rtol=1e-12)
    # the validation-DF CIDEr weights rare n-grams up: a different number
    assert not np.allclose(cider_scores(hyps, refs, ["the lungs are clear .", "no effusion ."]), ours)


def test_cider_df_key_and_both_variants_recorded():
    refs = ["The heart size is normal. No pleural effusion.", "The lungs are clear.", "Small left effusion."]
    hyps = ["The heart is normal. No effusion.", "Lungs are clear.", "There is a small left effusion."]
    points = {}
    for df in ("validation", "paper_code"):
        ev = NLGEvaluator("rgrg", refs + ["No acute process."], refs, meteor=StubMeteor(), cider_df=df)
        scores = ev.score(["a", "b", "c"], hyps, refs)
        points[df] = ev.point(scores)
        reps = ev.replicates(scores, [np.arange(3), np.arange(3)])
        assert set(reps) == set(points[df]) >= {"CIDER", "CIDER_paper_code"}
        np.testing.assert_allclose(reps["CIDER_paper_code"], points[df]["CIDER_paper_code"])
    assert points["paper_code"]["CIDER"] == points["paper_code"]["CIDER_paper_code"]
    assert points["validation"]["CIDER_paper_code"] == points["paper_code"]["CIDER_paper_code"]
    assert points["validation"]["CIDER"] != pytest.approx(points["validation"]["CIDER_paper_code"])
    with pytest.raises(ValueError, match="cider_df"):
        NLGEvaluator("rgrg", refs, refs, meteor=StubMeteor(), cider_df="test")


class StubMeteor:
    def segment_stats(self, hyps, refs):
        return [str(len(set(h.split()) & set(r.split())) / max(1, len(r.split()))) for h, r in zip(hyps, refs)]

    def aggregate(self, stats):
        values = [float(s) for s in stats]
        return (float(np.mean(values)) if values else float("nan")), values


def test_replicates_of_unequal_size_resamples_are_the_subsets_scores():
    refs = ["The heart size is normal.", "The lungs are clear.", "Small left effusion."]
    hyps = ["The heart is normal.", "Lungs are clear.", "A small left effusion."]
    ev = NLGEvaluator("rgrg", refs, refs, meteor=StubMeteor())
    scores = ev.score(["a", "b", "c"], hyps, refs)
    rows = [np.array([0, 2, 2]), np.array([1, 0])]  # a cluster bootstrap's replicates differ in size
    reps = ev.replicates(scores, rows)
    for r, row in enumerate(rows):
        subset = ev.score([str(i) for i in row], [hyps[i] for i in row], [refs[i] for i in row])
        for name, value in ev.point(subset).items():
            assert reps[name][r] == pytest.approx(value, rel=1e-9), name


def test_rouge_l_of_an_empty_tokenised_text_is_zero():
    """PTB tokenisation turns a punctuation-only report into "": pycocoevalcap's ROUGE-L then
    splits it into one empty token, so "" against "" scores 1.0 (a match of nothing)."""
    from crrg_clip.evaluate.nlg import rouge_l_scores

    assert rouge_l_scores(["", "a b", ""], ["", "a b", "a"]).tolist() == [0.0, 1.0, 0.0]


def test_punctuation_only_report_under_ptb_is_scored_zero_and_counted():
    refs = ["The heart is normal.", "No effusion."]
    ev = NLGEvaluator("ptb", refs, refs, meteor=StubMeteor())
    scores = ev.score(["a", "b"], ["...", "No effusion."], ["...", "No effusion."])
    assert scores.rouge.tolist() == [0.0, 1.0]
    assert scores.empty_after_tokenization == {"hypotheses": 1, "references": 1}
