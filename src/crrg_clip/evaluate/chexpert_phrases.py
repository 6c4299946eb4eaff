"""Our phrase lists for the rule-based CheXpert labeler (data, no logic).

Written for this project; the observations, and the idea of mention phrases plus negation
and uncertainty cues, follow the CheXpert labeler (Irvin et al. 2019,
stanfordmlgroup/chexpert-labeler), whose published lists we learned from but did not copy.

Three kinds of lexicon:

* ``MENTIONS`` - phrases that name an observation (a finding, a disease, a device). A
  mention is positive unless a cue puts it in a negation or uncertainty scope.
* ``ANATOMY`` - phrases that name the structure an observation is about ("heart size",
  "cardiac silhouette"). On their own they say nothing ("Heart size is stable."), so they
  count only when a cue scopes them: "Heart size is normal." -> Cardiomegaly negative,
  "Heart size is borderline." -> uncertain.
* Cue lists for negspacy's NegEx component (``negation_termset`` etc.): which words open
  a negation/uncertainty scope, before (``preceding``) or after (``following``) the
  mention, and which words close it (``termination``). The scope algorithm is negspacy's.

Strings are matched case-insensitively on whole spaCy tokens; a list is a spaCy token
pattern (for "heart size is mildly enlarged"-style mentions with optional adverbs).
"""

from __future__ import annotations

from negspacy.termsets import termset

_ADVERBS = (
    "mildly", "moderately", "severely", "markedly", "slightly", "minimally", "substantially",
    "massively", "again", "now", "still", "significantly",
)


def _copula(subjects: tuple[str, ...], predicates: tuple[str, ...]) -> list[dict]:
    """'<subject> is|are|remains [adverb] <predicate>' as a spaCy token pattern.

    All subjects have the same number of words; word ``i`` may be any subject's word ``i``.
    """
    lengths = {len(s.split()) for s in subjects}
    if len(lengths) != 1:
        raise ValueError(f"subjects of different lengths: {subjects}")
    pattern: list[dict] = [
        {"LOWER": {"IN": sorted({s.split()[i] for s in subjects})}} for i in range(lengths.pop())
    ]
    pattern.append({"LOWER": {"IN": ["is", "are", "remains", "remain", "appears", "appear"]}})
    pattern.append({"LOWER": {"IN": list(_ADVERBS)}, "OP": "?"})
    pattern.append({"LOWER": {"IN": list(predicates)}})
    return pattern


_HEART_1 = ("heart",)
_HEART_2 = ("heart size", "cardiac silhouette", "cardiac size", "cardiac contour", "heart shadow")
_ENLARGED = ("enlarged", "large", "increased")
_MEDIASTINUM_1 = ("mediastinum",)
_MEDIASTINUM_2 = ("cardiomediastinal silhouette", "mediastinal silhouette", "mediastinal contour",
                  "mediastinal contours", "cardiomediastinal contour", "cardiomediastinal contours")
_WIDENED = ("widened", "enlarged", "prominent", "wide")

MENTIONS: dict[str, list] = {
    "Atelectasis": [
        "atelectasis", "atelectases", "atelectatic", "collapse", "collapsed", "volume loss",
        "atelectatic change", "atelectatic changes", "subsegmental atelectasis",
        "plate-like atelectasis", "platelike atelectasis",
    ],
    "Cardiomegaly": [
        "cardiomegaly", "cardiac enlargement", "enlarged heart", "enlarged cardiac silhouette",
        "enlargement of the cardiac silhouette", "enlargement of the heart",
        "enlarged heart size", "enlarged cardiac size",
        _copula(_HEART_1, _ENLARGED), _copula(_HEART_2, _ENLARGED),
    ],
    "Consolidation": [
        "consolidation", "consolidations", "consolidative", "consolidated",
        "airspace consolidation", "air space consolidation",
    ],
    "Edema": [
        "edema", "pulmonary edema", "interstitial edema", "alveolar edema", "vascular congestion",
        "pulmonary vascular congestion", "pulmonary congestion", "vascular engorgement",
        "heart failure", "chf", "fluid overload", "cephalization", "kerley b lines",
        "kerley lines", "edematous",
    ],
    "Enlarged Cardiomediastinum": [
        "widened mediastinum", "mediastinal widening", "widening of the mediastinum",
        "mediastinal enlargement", "enlarged mediastinum", "enlarged cardiomediastinal silhouette",
        "enlargement of the cardiomediastinal silhouette", "widened cardiomediastinal silhouette",
        "prominent mediastinum", "enlarged mediastinal contours",
        _copula(_MEDIASTINUM_1, _WIDENED), _copula(_MEDIASTINUM_2, _WIDENED),
    ],
    "Fracture": [
        "fracture", "fractures", "fractured", "osseous abnormality", "osseous abnormalities",
        "bony abnormality", "bony abnormalities", "osseous injury",
    ],
    "Lung Lesion": [
        "nodule", "nodules", "nodular opacity", "nodular opacities", "mass", "masses",
        "lesion", "lesions", "tumor", "tumors", "neoplasm", "carcinoma", "malignancy",
        "metastasis", "metastases", "metastatic disease", "cavitary lesion", "lung mass",
        "pulmonary nodule", "pulmonary nodules",
    ],
    "Lung Opacity": [
        "opacity", "opacities", "opacification", "opacifications", "opacified", "infiltrate",
        "infiltrates", "infiltration", "airspace disease", "air space disease",
        "airspace process", "air space process", "haziness", "hazy", "density", "densities",
        "ground glass", "ground-glass", "reticular markings", "interstitial markings",
        "increased markings", "interstitial abnormality", "interstitial disease",
        "parenchymal abnormality",
    ],
    "No Finding": [],  # derived, never mentioned: see chexpert_labeler.no_finding
    "Pleural Effusion": [
        "pleural effusion", "pleural effusions", "effusion", "effusions", "pleural fluid",
        "hydrothorax", "hydropneumothorax", "blunting of the costophrenic angle",
        "blunting of the costophrenic angles", "blunted costophrenic angle",
        "blunted costophrenic angles", "layering fluid", "loculated fluid",
    ],
    "Pleural Other": [
        "pleural thickening", "pleural plaque", "pleural plaques", "pleural scarring",
        "pleural calcification", "pleural calcifications", "fibrothorax",
        "pleural-parenchymal scarring", "pleuroparenchymal scarring", "apical pleural thickening",
        "pleural abnormality",
    ],
    "Pneumonia": [
        "pneumonia", "pneumonias", "bronchopneumonia", "pneumonic", "infection", "infections",
        "infectious process", "infectious processes", "aspiration",
    ],
    "Pneumothorax": [
        "pneumothorax", "pneumothoraces", "hydropneumothorax", "ptx",
    ],
    "Support Devices": [
        "tube", "tubes", "endotracheal tube", "et tube", "ng tube", "og tube", "nasogastric",
        "orogastric", "enteric tube", "feeding tube", "chest tube", "tracheostomy",
        "catheter", "catheters", "central line", "central venous catheter", "picc", "picc line",
        "midline catheter", "swan-ganz", "pacemaker", "pacer", "pacing leads", "pacing wire",
        "pacing wires", "icd", "defibrillator", "leads", "lead", "sternotomy wires",
        "sternal wires", "port", "port-a-cath", "stent", "stents", "clip", "clips",
        "surgical clips", "coil", "coils", "drain", "drains", "device", "devices", "hardware",
        "prosthetic valve", "valve replacement", "mitral valve replacement",
        "aortic valve replacement", "monitoring leads", "ecg leads", "impella", "balloon pump",
    ],
}

ANATOMY: dict[str, list] = {
    "Cardiomegaly": [
        "heart", "heart size", "cardiac silhouette", "cardiac size", "cardiac contour",
        "heart shadow",
    ],
    "Enlarged Cardiomediastinum": [
        "mediastinum", "cardiomediastinal silhouette", "cardiomediastinal contour",
        "cardiomediastinal contours", "mediastinal silhouette", "mediastinal contour",
        "mediastinal contours", "mediastinal and hilar contours", "hilar and mediastinal contours",
    ],
    "Fracture": ["osseous structures", "bony structures", "bones", "visualized osseous structures"],
    "Pleural Effusion": ["costophrenic angle", "costophrenic angles"],
}

# Cues that make a scope mean "normal": they negate an ANATOMY phrase (and a mention).
_NORMAL_PRECEDING = ["normal", "unremarkable"]
_NORMAL_FOLLOWING = [
    "is normal", "are normal", "appears normal", "appear normal", "is within normal limits",
    "are within normal limits", "within normal limits", "normal in size", "is unremarkable",
    "are unremarkable", "not enlarged", "not widened", "is sharp", "are sharp", "are clear",
    "has resolved", "have resolved", "resolved",
]
_RADIOLOGY_PRECEDING_NEGATION = ["resolution of", "interval resolution of", "clear of"]

# NegEx's clinical cues that a radiologist uses to say "uncertain" (CheXpert reads
# "evaluate for", "rule out" and "versus" as uncertainty), moved to the uncertainty lists.
_NOT_NEGATION = ["evaluate for", "rule out", "rules out", "r/o", "ro", "versus"]

# Extra scope ends: a new clause "... and there is ..." or "... with ..." starts a fresh
# assertion ("Normal heart size with small left effusion").
_EXTRA_TERMINATION = ["with", "there is", "there are", "while", "whereas", "otherwise"]

# Cues that make a mention uncertain even when a negation cue also scopes it
# ("cannot exclude pneumonia": CheXpert's pre-negation uncertainty).
STRONG_UNCERTAINTY_PRECEDING = [
    "cannot exclude", "can not exclude", "cannot rule out", "can not rule out",
    "cannot be excluded", "not excluded", "not ruled out", "can't exclude",
    "difficult to exclude", "not be excluded", "no definite evidence to exclude",
    "cannot be distinguished from", "can not be distinguished from",
]
STRONG_UNCERTAINTY_FOLLOWING = [
    "cannot be excluded", "can not be excluded", "cannot be ruled out", "can not be ruled out",
    "not excluded", "not be excluded", "not ruled out", "is not excluded", "are not excluded",
    "difficult to exclude",
]

UNCERTAINTY_PRECEDING = [
    "possible", "possibly", "probable", "probably", "likely", "may", "might", "could",
    "questionable", "question of", "suspicious for", "suspected", "suspect", "suspicion of",
    "concerning for", "concern for", "suggestive of", "suggests", "suggesting", "suggest",
    "worrisome for", "versus", "vs", "vs.", "differential diagnosis includes",
    "differential includes", "evaluate for", "rule out", "r/o", "borderline", "equivocal",
    "indeterminate", "presumed", "presumably", "potential",
    "may represent", "could represent", "may reflect", "could reflect", "raising the possibility of",
]
UNCERTAINTY_FOLLOWING = [
    "is possible", "are possible", "is suspected", "are suspected", "is questioned",
    "is not certain", "is borderline", "are borderline", "is equivocal", "is indeterminate",
    "is not excluded",
]


def _empty_termset() -> dict[str, list[str]]:
    return {"pseudo_negations": [], "preceding_negations": [], "following_negations": [],
            "termination": []}


def _without_self_terminating(ts: dict[str, list[str]]) -> dict[str, list[str]]:
    """Drop cues that contain a termination phrase ("no cause of" holds "cause of"):
    negspacy ends the scope at that phrase, so such a cue could never reach a mention."""
    ends = [f" {t} " for t in ts["termination"]]
    def keep(cue: str) -> bool:
        return not any(end in f" {cue} " for end in ends)
    out = {key: sorted({c for c in values if keep(c)}) for key, values in ts.items()
           if key != "termination"}
    out["termination"] = sorted(set(ts["termination"]))
    return out


def negation_termset() -> dict[str, list[str]]:
    """negspacy's ``en_clinical`` NegEx cues, adapted to radiology (see the lists above)."""
    base = termset("en_clinical").get_patterns()
    ts = {key: list(values) for key, values in base.items()}
    ts["preceding_negations"] = [c for c in ts["preceding_negations"] if c not in _NOT_NEGATION]
    ts["preceding_negations"] += _NORMAL_PRECEDING + _RADIOLOGY_PRECEDING_NEGATION
    ts["following_negations"] += _NORMAL_FOLLOWING
    ts["termination"] += _EXTRA_TERMINATION
    return _without_self_terminating(ts)


def uncertainty_termset() -> dict[str, list[str]]:
    """Uncertainty cues, used with negspacy's NegEx scope algorithm."""
    base = termset("en_clinical").get_patterns()
    ts = _empty_termset()
    ts["pseudo_negations"] = ["no change", "without change"]
    ts["preceding_negations"] = sorted(set(UNCERTAINTY_PRECEDING))
    ts["following_negations"] = sorted(set(UNCERTAINTY_FOLLOWING))
    ts["termination"] = sorted(set(base["termination"] + _EXTRA_TERMINATION))
    return _without_self_terminating(ts)


def strong_uncertainty_termset() -> dict[str, list[str]]:
    """Uncertainty cues that win over negation ("cannot exclude")."""
    base = termset("en_clinical").get_patterns()
    ts = _empty_termset()
    ts["preceding_negations"] = sorted(set(STRONG_UNCERTAINTY_PRECEDING))
    ts["following_negations"] = sorted(set(STRONG_UNCERTAINTY_FOLLOWING))
    ts["termination"] = sorted(set(base["termination"] + _EXTRA_TERMINATION))
    return _without_self_terminating(ts)
