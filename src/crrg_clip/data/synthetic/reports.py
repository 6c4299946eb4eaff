"""MIMIC-CXR free-text reports in the real file layout (FORMATS.md section 1).

Every line begins with one space, blank separators are ``" \\n"``, text is wrapped near
79 characters, ``FINAL REPORT`` is indented, de-identified spans are ``___``. Besides the
standard layout, a report can carry one of the real header variants (``VARIANTS``) or,
as a planted fault, no FINDINGS section at all (``NO_FINDINGS``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

WIDTH = 79  # longest line, leading space included
TITLE = " " * 33 + "FINAL REPORT"

STANDARD = "standard"
NO_FINDINGS = "no_findings"  # a planted fault: the findings sentences stand in IMPRESSION
# variant -> the header that opens the findings text (None: see the variant's layout)
VARIANTS = {
    "findings_and_impression": "FINDINGS AND IMPRESSION:",
    "view_header_pa_and_lateral": "PA AND LATERAL:",
    "view_header_portable": "PORTABLE:",
    "typo_finidngs": "FINIDNGS:",
    "text_on_header_line": "FINDINGS:",
    "addendum_on_top": "FINDINGS:",
}
# Under the MIT-LCP section parser's normalisation, "findings and impression" maps to
# *impression*, so these two variants have no findings section.
WITHOUT_FINDINGS_SECTION = ("findings_and_impression", NO_FINDINGS)

_INDICATIONS = (
    "___-year-old {person} with cough and fever.  Evaluate for pneumonia.",
    "___ {person} with shortness of breath, ___.",
    "History: ___{sex} with chest pain.",
    "___-year-old {person} status post fall.  Evaluate for acute process.",
    "___ with worsening dyspnea on exertion.  Assess for effusion.",
)


@dataclass(frozen=True)
class Report:
    text: str  # the whole file
    phrases: tuple[str, ...]  # each findings sentence exactly as it stands in the file
    findings: str  # the findings sentences joined by single spaces
    variant: str
    findings_header: str | None  # None when the report has no findings-bearing header


def wrap(paragraph: str, prefix: str = "", width: int = WIDTH) -> tuple[str, list[int]]:
    """Wrap ``paragraph`` into lines that begin with one space (the first after ``prefix``).

    Returns the block (no trailing newline) and, for each character of the paragraph that
    is not a space, its offset in the block, so a sentence's raw text (with the report's
    ``"\\n "`` line breaks inside) can be cut out of the block.
    """
    mapping = [-1] * len(paragraph)
    out = ""
    line = " " + prefix
    line_has_word = False
    prev_end = 0
    for match in re.finditer(r"\S+", paragraph):
        word = match.group()
        sep = paragraph[prev_end : match.start()] if line_has_word else ""
        if line_has_word and len(line) + len(sep) + len(word) > width:
            out += line + "\n"
            line, sep = " ", ""
        line += sep
        start = len(out) + len(line)
        for k in range(len(word)):
            mapping[match.start() + k] = start + k
        line += word
        line_has_word = True
        prev_end = match.end()
    return out + line, mapping


def _wrapped_sentences(sentences: list[str], rng: np.random.Generator, prefix: str = ""):
    """Join sentences (one or two spaces apart, as radiologists type), wrap, cut the phrases."""
    spans, paragraph = [], ""
    for i, s in enumerate(sentences):
        if i:
            paragraph += "  " if rng.random() < 0.4 else " "
        spans.append((len(paragraph), len(paragraph) + len(s)))
        paragraph += s
    block, mapping = wrap(paragraph, prefix)
    phrases = tuple(block[mapping[a] : mapping[b - 1] + 1] for a, b in spans)
    return block, phrases


def _section(header: str, body: str | None) -> list[str]:
    lines = [f" {header} "]
    if body is not None:
        lines += [" ", body]
    return lines


def write_report_text(
    sentences: list[str],
    impression: str,
    *,
    variant: str,
    view: str,
    has_lateral: bool,
    gender: str,
    rng: np.random.Generator,
) -> Report:
    """Compose one report; ``sentences`` are the FINDINGS sentences in order."""
    if variant not in VARIANTS and variant not in (STANDARD, NO_FINDINGS):
        raise ValueError(f"unknown report variant {variant!r}")
    person = "woman" if gender == "F" else "man"
    indication = str(rng.choice(_INDICATIONS)).format(person=person, sex=gender)
    if view == "AP":
        exam, technique = "CHEST (PORTABLE AP)", "Single portable AP view of the chest."
    elif has_lateral:
        exam, technique = "CHEST (PA AND LAT)", "Chest PA and lateral."
    else:
        exam, technique = "CHEST (PA)", "Single PA view of the chest."
    comparison = "___" if rng.random() < 0.6 else "None."

    blocks: list[list[str]] = []
    if variant == "addendum_on_top":
        addendum, _ = wrap("ADDENDUM:  Findings were discussed with Dr. ___ by telephone at ___ on ___.")
        blocks.append([addendum, " " + "_" * 78, " "])
    head = [TITLE, f" EXAMINATION:  {exam}", " "]
    head += [wrap(f"INDICATION:  {indication}")[0], " "]
    head += [f" TECHNIQUE:  {technique}", " ", f" COMPARISON:  {comparison}", " "]
    blocks.append(head)

    impression_block, _ = wrap(impression)
    header = VARIANTS.get(variant, "FINDINGS:")
    if variant == NO_FINDINGS:
        block, phrases = _wrapped_sentences(sentences + [impression], rng)
        phrases = phrases[:-1]
        blocks.append(_section("IMPRESSION:", block))
        header = None
    elif variant == "findings_and_impression":
        block, phrases = _wrapped_sentences(sentences + [impression], rng)
        phrases = phrases[:-1]
        blocks.append(_section(header, block))
    elif variant == "text_on_header_line":
        block, phrases = _wrapped_sentences(sentences, rng, prefix=f"{header}  ")
        blocks.append([block, " "] + _section("IMPRESSION:", impression_block))
    else:
        block, phrases = _wrapped_sentences(sentences, rng)
        blocks.append(_section(header, block) + [" "] + _section("IMPRESSION:", impression_block))
    text = "\n".join(line for b in blocks for line in b) + "\n"
    return Report(
        text=text,
        phrases=phrases,
        findings=" ".join(sentences),
        variant=variant,
        findings_header=header,
    )
