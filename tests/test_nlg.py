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
