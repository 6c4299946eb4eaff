"""The English -> Italian word map of the demo's FINDINGS vocabulary.

The demo's Marian models (en -> it, it -> en) are built from this map, so every word a
synthetic FINDINGS sentence uses has an entry. Tokens are lower-cased runs of letters;
numbers and punctuation pass through unchanged.
"""

from __future__ import annotations

import re

TRANSLATION_LEXICON: dict[str, str] = {
    "a": "un",
    "abnormality": "anomalia",
    "acute": "acuta",
    "and": "e",
    "angle": "angolo",
    "apical": "apicale",
    "are": "sono",
    "at": "alla",
    "atelectasis": "atelettasia",
    "base": "base",
    "blunting": "obliterazione",
    "cardiac": "cardiaca",
    "cardiomegaly": "cardiomegalia",
    "clear": "liberi",
    "cm": "cm",
    "concerning": "sospetta",
    "consolidation": "consolidamento",
    "contours": "contorni",
    "costophrenic": "costofrenico",
    "effusion": "versamento",
    "enlarged": "aumentata",
    "focal": "focale",
    "for": "per",
    "heart": "cuore",
    "hilar": "ilari",
    "in": "nel",
    "is": "è",
    "left": "sinistro",
    "likely": "probabilmente",
    "limits": "limiti",
    "linear": "lineare",
    "lung": "polmone",
    "lungs": "polmoni",
    "mediastinal": "mediastinici",
    "mid": "medio",
    "mildly": "lievemente",
    "mm": "mm",
    "moderate": "moderato",
    "no": "nessun",
    "nodule": "nodulo",
    "normal": "normali",
    "of": "dell",
    "opacity": "opacità",
    "osseous": "ossea",
    "patchy": "chiazzata",
    "pleural": "pleurico",
    "pneumonia": "polmonite",
    "pneumothorax": "pneumotorace",
    "present": "presente",
    "reflects": "riflette",
    "right": "destro",
    "seen": "visto",
    "silhouette": "silhouette",
    "size": "dimensione",
    "small": "piccolo",
    "the": "il",
    "there": "vi",
    "upper": "superiore",
    "with": "con",
    "within": "entro",
}


def words(text: str) -> list[str]:
    """The lexicon's tokens of a text: lower-cased runs of letters."""
    return re.findall(r"[a-z]+", text.lower())
