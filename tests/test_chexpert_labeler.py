"""The rule-based CheXpert labeler: a table of MIMIC-style sentences, every cue, sentence
scope, aggregation, No Finding, the cache, and agreement with the synthetic demo's truth."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pandas as pd
import pytest

from crrg_clip.data.synthetic.findings import (
    CHEXPERT_LABELS,
    chexpert_labels,
    sample_findings,
    study_sentences,
)
from crrg_clip.evaluate import chexpert_phrases as phrases
from crrg_clip.evaluate.chexpert_labeler import (
    CHEXPERT_OBSERVATIONS,
    ChexpertLabeler,
    is_abnormal_sentence,
    label_reports,
)
from crrg_clip.evaluate.clinical_efficacy import ce_metrics, ce_per_report

P, N, U = 1.0, 0.0, -1.0

# (sentence, every observation it mentions -> value); all others must be NaN.
SENTENCE_TABLE = [
    # Atelectasis
    ("Bibasilar atelectasis.", {"Atelectasis": P}),
    ("Subsegmental atelectasis at the left base.", {"Atelectasis": P}),
    ("Left lower lobe collapse.", {"Atelectasis": P}),
    ("No atelectasis.", {"Atelectasis": N}),
    ("Opacity may represent atelectasis.", {"Lung Opacity": P, "Atelectasis": U}),
    # Cardiomegaly (mentions and anatomy + normal cues)
    ("Moderate cardiomegaly is present.", {"Cardiomegaly": P}),
    ("The heart size is mildly enlarged.", {"Cardiomegaly": P}),
    ("The cardiac silhouette is enlarged.", {"Cardiomegaly": P}),
    ("The heart is enlarged.", {"Cardiomegaly": P}),
    ("Heart size is normal.", {"Cardiomegaly": N}),
    ("Normal heart size.", {"Cardiomegaly": N}),
    ("The cardiac silhouette is within normal limits.", {"Cardiomegaly": N}),
    ("The heart is not enlarged.", {"Cardiomegaly": N}),
    ("Heart size is borderline.", {"Cardiomegaly": U}),
    ("Heart size is stable.", {}),
    # Consolidation
    ("Focal consolidation in the right upper lung.", {"Consolidation": P}),
    ("No focal consolidation.", {"Consolidation": N}),
    # Edema
    ("Mild pulmonary edema.", {"Edema": P}),
    ("Pulmonary vascular congestion.", {"Edema": P}),
    ("No pulmonary edema.", {"Edema": N}),
    ("Findings may reflect mild interstitial edema.", {"Edema": U}),
    # Enlarged Cardiomediastinum
    ("The mediastinum is widened.", {"Enlarged Cardiomediastinum": P}),
    ("Widened mediastinum.", {"Enlarged Cardiomediastinum": P}),
    ("The mediastinal and hilar contours are normal.", {"Enlarged Cardiomediastinum": N}),
    ("Normal cardiomediastinal silhouette.", {"Enlarged Cardiomediastinum": N}),
    # Fracture
    ("Old left rib fractures.", {"Fracture": P}),
    ("No acute osseous abnormality.", {"Fracture": N}),
    ("No displaced fracture is seen.", {"Fracture": N}),
    # Lung Lesion
    ("A 8 mm nodule is seen in the right upper lung.", {"Lung Lesion": P}),
    ("Right hilar mass.", {"Lung Lesion": P}),
    ("No suspicious pulmonary nodules.", {"Lung Lesion": N}),
    # Lung Opacity
    ("There is a patchy opacity in the left mid lung.", {"Lung Opacity": P}),
    ("Bilateral airspace disease.", {"Lung Opacity": P}),
    ("No new infiltrate.", {"Lung Opacity": N}),
    # Pleural Effusion
    ("Small left pleural effusion is present.", {"Pleural Effusion": P}),
    ("Moderate right pleural effusion with blunting of the costophrenic angle.",
     {"Pleural Effusion": P}),
    ("No right pleural effusion.", {"Pleural Effusion": N}),
    ("Costophrenic angles are sharp.", {"Pleural Effusion": N}),
    ("Possible small left pleural effusion.", {"Pleural Effusion": U}),
    # Pleural Other
    ("Stable left apical pleural thickening.", {"Pleural Other": P}),
    ("Calcified pleural plaques.", {"Pleural Other": P}),
    # Pneumonia
    ("Right lower lobe pneumonia.", {"Pneumonia": P}),
    ("Consolidation is concerning for pneumonia.", {"Consolidation": P, "Pneumonia": U}),
    ("Pneumonia cannot be excluded.", {"Pneumonia": U}),
    ("Cannot exclude pneumonia.", {"Pneumonia": U}),
    ("No focal consolidation to suggest pneumonia.", {"Consolidation": N, "Pneumonia": N}),
    # Pneumothorax
    ("Small right apical pneumothorax is seen.", {"Pneumothorax": P}),
    ("No right pneumothorax is seen.", {"Pneumothorax": N}),
    ("Interval resolution of the right pneumothorax.", {"Pneumothorax": N}),
    ("The pneumothorax has resolved.", {"Pneumothorax": N}),
    # Support Devices
    ("Endotracheal tube terminates 4 cm above the carina.", {"Support Devices": P}),
    ("Left-sided pacemaker with leads in the right atrium and ventricle.", {"Support Devices": P}),
    ("Right PICC line ends in the SVC.", {"Support Devices": P}),
    # several observations, one negation cue scoping a list
    ("No pleural effusion, pneumothorax or focal consolidation.",
     {"Pleural Effusion": N, "Pneumothorax": N, "Consolidation": N}),
    # scope ends at a termination cue
    ("No pneumothorax, but there is a small right effusion.",
     {"Pneumothorax": N, "Pleural Effusion": P}),
    ("Normal heart size with small bilateral effusions.",
     {"Cardiomegaly": N, "Pleural Effusion": P}),
    ("Bibasilar opacities may represent atelectasis versus pneumonia.",
     {"Lung Opacity": P, "Atelectasis": U, "Pneumonia": U}),
    # nothing CheXpert observes
    ("The lungs are clear.", {}),
    ("Unchanged appearance of the chest.", {}),
]


def _mentioned(row: pd.Series) -> dict[str, float]:
    return {o: float(v) for o, v in row.items() if o != "No Finding" and not math.isnan(v)}


def test_observations_are_the_synthetic_data_labels_in_order():
    assert CHEXPERT_OBSERVATIONS == tuple(CHEXPERT_LABELS)
    assert len(CHEXPERT_OBSERVATIONS) == 14


def test_sentence_table():
    frame = label_reports([s for s, _ in SENTENCE_TABLE])
    assert list(frame.columns) == list(CHEXPERT_OBSERVATIONS)
    assert frame.dtypes.eq(float).all()
    failures = [
        (sentence, expected, _mentioned(row))
        for (sentence, expected), (_, row) in zip(SENTENCE_TABLE, frame.iterrows(), strict=True)
        if _mentioned(row) != expected
    ]
    assert not failures, "\n".join(f"{s!r}: expected {e}, got {g}" for s, e, g in failures)


def test_table_covers_every_observation_and_value():
    seen = {(o, v) for _, expected in SENTENCE_TABLE for o, v in expected.items()}
    for obs in CHEXPERT_OBSERVATIONS:
        if obs != "No Finding":
            assert (obs, P) in seen, obs
    assert {v for _, v in seen} == {P, N, U}


def test_sentence_scope():
    frame = label_reports(["No effusion. Cardiomegaly is present."])
    assert frame.loc[0, "Pleural Effusion"] == N
    assert frame.loc[0, "Cardiomegaly"] == P
    # the negation of the first sentence does not reach the second
    frame = label_reports(["No pneumothorax. Small left pleural effusion."])
    assert frame.loc[0, "Pneumothorax"] == N and frame.loc[0, "Pleural Effusion"] == P


def _cue_cases():
    """Every cue we configure, in a sentence where it should decide the value."""
    neg = phrases.negation_termset()
    unc = phrases.uncertainty_termset()
    strong = phrases.strong_uncertainty_termset()
    for kind, termset, value in (("negation", neg, N), ("uncertainty", unc, U),
                                 ("strong", strong, U)):
        for cue in termset["preceding_negations"]:
            yield pytest.param(f"{cue} pleural effusion.", value, id=f"{kind}-before-{cue}")
        for cue in termset["following_negations"]:
            yield pytest.param(f"Pleural effusion {cue}.", value, id=f"{kind}-after-{cue}")


@pytest.mark.parametrize(("sentence", "value"), list(_cue_cases()))
def test_every_cue(sentence, value):
    assert label_reports([sentence]).loc[0, "Pleural Effusion"] == value


def test_strong_uncertainty_beats_negation_and_negation_beats_uncertainty():
    frame = label_reports(["Cannot exclude pneumonia.", "No pneumonia is suspected."])
    assert frame.loc[0, "Pneumonia"] == U
    assert frame.loc[1, "Pneumonia"] == N


def test_aggregation_positive_beats_uncertain_beats_negative():
    frame = label_reports([
        "Possible left effusion. Large left effusion.",
        "No effusion. Possible effusion.",
        "No effusion. No pleural effusion.",
    ])
    assert frame["Pleural Effusion"].tolist() == [P, U, N]


def test_no_finding_rule():
    frame = label_reports([
        "No pleural effusion or pneumothorax. Heart size is normal.",
        "Endotracheal tube in place. The lungs are clear.",  # devices do not count
        "Possible small left pleural effusion.",  # uncertain counts
        "Small left pleural effusion.",
        "",
    ])
    assert frame.loc[0, "No Finding"] == P
    assert frame.loc[1, "No Finding"] == P and frame.loc[1, "Support Devices"] == P
    assert math.isnan(frame.loc[2, "No Finding"])
    assert math.isnan(frame.loc[3, "No Finding"])
    assert frame.loc[4, "No Finding"] == P  # nothing positive: CheXpert's rule says 1
    assert frame.iloc[4].drop("No Finding").isna().all()


def test_is_abnormal_sentence():
    frame = label_reports([
        "Small left pleural effusion.", "Possible pneumonia.", "No pneumothorax.",
        "Nasogastric tube in the stomach.", "The lungs are clear.",
    ])
    assert [is_abnormal_sentence(row) for _, row in frame.iterrows()] == [
        True, True, False, False, False]
    assert is_abnormal_sentence({"Cardiomegaly": 1.0})
    assert not is_abnormal_sentence({"Support Devices": 1.0, "No Finding": 1.0})


def test_cache_labels_each_sentence_once():
    labeler = ChexpertLabeler()
    assert labeler.name == "rule-based"
    reports = ["No effusion. Cardiomegaly is present.", "Cardiomegaly is present. No effusion."] * 50
    first = labeler.label(reports)
    assert len(labeler._sentence_cache) == 2
    again = labeler.label(list(reversed(reports)))
    assert len(labeler._sentence_cache) == 2
    pd.testing.assert_frame_equal(first, again.iloc[::-1].reset_index(drop=True))
    assert first.shape == (100, 14)


def test_whitespace_and_missing_texts():
    frame = label_reports(["  No   pleural\neffusion.  ", None])
    assert frame.loc[0, "Pleural Effusion"] == N
    assert frame.loc[1, "No Finding"] == P


# --- the synthetic demo's truth -------------------------------------------------------

def _by_our_convention(sentence):
    """The synthetic truth of one sentence, rewritten where CheXpert's conventions differ.

    * "likely reflects atelectasis": CheXpert reads "likely" as uncertain (truth: 1).
    * "Focal consolidation ...": CheXpert does not derive Lung Opacity from consolidation
      (truth: 1, a parent label).
    * "The mediastinal and hilar contours are normal.": CheXpert labels the normal
      mediastinum an Enlarged Cardiomediastinum negative (truth: not mentioned).
    """
    labels = dict(sentence.chexpert)
    if "likely reflects atelectasis" in sentence.text:
        labels["Atelectasis"] = U
    if sentence.text.startswith("Focal consolidation"):
        labels.pop("Lung Opacity")
    if sentence.text.startswith("The mediastinal and hilar contours"):
        labels["Enlarged Cardiomediastinum"] = N
    return dataclasses.replace(sentence, chexpert=labels)


@pytest.fixture(scope="module")
def synthetic_studies():
    rng = np.random.default_rng(20240610)
    texts, truth, conventional = [], [], []
    for _ in range(300):
        sentences = study_sentences(sample_findings(rng))
        texts.append(" ".join(s.text for s in sentences))
        truth.append(chexpert_labels(sentences))
        conventional.append(chexpert_labels([_by_our_convention(s) for s in sentences]))
    columns = list(CHEXPERT_OBSERVATIONS)
    return (texts, ChexpertLabeler().label(texts), pd.DataFrame(truth)[columns],
            pd.DataFrame(conventional)[columns])


def _agreement(a: pd.DataFrame, b: pd.DataFrame) -> np.ndarray:
    x, y = a.to_numpy(), b.to_numpy()
    return (x == y) | (np.isnan(x) & np.isnan(y))


def test_synthetic_truth_agreement_by_convention(synthetic_studies):
    _, labeled, _, conventional = synthetic_studies
    # Every cell, blanks included: measured 100% on this seed.
    assert _agreement(labeled, conventional).mean() >= 0.99


def test_synthetic_truth_agreement_raw(synthetic_studies):
    _, labeled, truth, _ = synthetic_studies
    agree = _agreement(labeled, truth)
    stated = truth.notna().to_numpy()
    comparable = [c for c, o in enumerate(CHEXPERT_OBSERVATIONS)
                  if o not in ("Atelectasis", "Lung Opacity")]
    # Where the truth states a value and no convention differs: measured 100%.
    assert agree[:, comparable][stated[:, comparable]].mean() >= 0.98
    # The labeler never calls positive what the truth leaves blank or negative.
    assert not ((labeled.to_numpy() == P) & (truth.to_numpy() != P)).any()
    # mic-5 of the labeler against the truth (uncertain counts positive): measured 1.0.
    ce = ce_metrics(ce_per_report(labeled, truth))
    assert ce["CE_F1_mic5"] >= 0.95
    assert ce["CE_P_mic5"] >= 0.95 and ce["CE_R_mic5"] >= 0.95
