"""MIMIC-CXR free-text reports: find the sections, keep the last FINDINGS.

The section logic follows the published facts of the official MIMIC-CXR section parser
(written here from its description, FORMATS.md section 1): a header is a newline, one
space, upper-case letters/space/``()/,-``, a colon and whitespace. Header names are
lower-cased and normalised (typos, combined sections, view names); text on the header
line belongs to its section; addenda above a line of underscores are set aside.
"""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd

from .exclusions import ExclusionLog

DATASET = "mimic-cxr-reports"

HEADER = re.compile(r"\n ([A-Z ()/,-]+):\s")
UNDERSCORE_LINE = re.compile(r"^[ \t]*_{8,}[ \t]*$", re.MULTILINE)
REPORT_NAME = re.compile(r"^s(\d+)\.txt$")
PATIENT_DIR = re.compile(r"^p(\d+)$")

# Header spellings seen in the wild, mapped to the canonical section name.
_ALIASES = {
    "findings": "findings",
    "finding": "findings",
    "finidngs": "findings",
    "findngs": "findings",
    "findins": "findings",
    "fidnings": "findings",
    "fndings": "findings",
    "finsings": "findings",
    "findigns": "findings",
    "findinsg": "findings",
    "fiindings": "findings",
    "impression": "impression",
    "impressions": "impression",
    "impresssion": "impression",
    "imppression": "impression",
    "impresion": "impression",
    "imprression": "impression",
    "imression": "impression",
    "conclusion": "impression",
    "conclusions": "impression",
    "findings and impression": "impression",
    "findings and impressions": "impression",
    "impression and findings": "impression",
    "findings/impression": "impression",
    "impression/findings": "impression",
    "findings / impression": "impression",
    "summary": "impression",
    "recommendation": "recommendations",
    "recommendations": "recommendations",
    "recommendation(s)": "recommendations",
    "indication": "indication",
    "indications": "indication",
    "history": "history",
    "clinical history": "history",
    "technique": "technique",
    "comparison": "comparison",
    "comparisons": "comparison",
    "examination": "examination",
    "exam": "examination",
}

# A header made only of these words names a view ("PA AND LATERAL:", "PORTABLE AP:",
# "AP VIEW:"): what follows it is the findings.
_VIEW_WORDS = {
    "pa", "ap", "lateral", "lat", "and", "portable", "view", "views", "frontal", "upright",
    "supine", "semi-upright", "semi", "erect", "chest", "of", "the", "single", "two",
    "one", "radiograph", "radiographs", "(pa", "lateral)", "(pa)", "(ap)", "ap)", "(ap",
    "bedside", "&", "film", "films",
}
_VIEW_KEYS = {"pa", "ap", "lateral", "lat", "portable", "frontal"}


class ReportError(ValueError):
    """A report file cannot be read or named."""


def normalise_header(header: str) -> str:
    """Lower-case, collapse spaces and map aliases, typos and view names to a section name."""
    name = " ".join(header.lower().split())
    if name in _ALIASES:
        return _ALIASES[name]
    words = name.replace(",", " ").replace("/", " ").split()
    if words and set(words) <= _VIEW_WORDS and set(words) & _VIEW_KEYS:
        return "findings"
    return name


def strip_addenda(text: str) -> tuple[str, str]:
    """Split ``(addendum, report)`` at the last line of underscores that still has section
    headers below it (addenda stand at the top); no such line -> ``("", text)``."""
    for cut in reversed(list(UNDERSCORE_LINE.finditer(text))):
        if HEADER.search(text, cut.end()):
            return text[: cut.start()], text[cut.end():]
    return "", text


def split_sections(text: str) -> list[tuple[str, str]]:
    """``[(section name, raw text)]`` in report order; text before the first header is ``preamble``."""
    _, body = strip_addenda(text.replace("\r\n", "\n").replace("\r", "\n"))
    body = "\n" + body  # a header on the first line is still "newline + one space"
    sections: list[tuple[str, str]] = []
    matches = list(HEADER.finditer(body))
    start = matches[0].start() if matches else len(body)
    sections.append(("preamble", body[:start]))
    for i, match in enumerate(matches):
        end = matches[i + 1].start() if i + 1 < len(matches) else len(body)
        # match.end() consumed one whitespace char after the colon; text on the header
        # line itself stays in the section.
        sections.append((normalise_header(match.group(1)), body[match.end():end]))
    return sections


def collapse(text: str) -> str:
    """All whitespace (newlines included) collapsed to single spaces."""
    return " ".join(text.split())


def extract_findings(text: str) -> str:
    """The last non-empty FINDINGS section, whitespace collapsed; ``""`` when there is none."""
    findings = [collapse(body) for name, body in split_sections(text) if name == "findings"]
    findings = [f for f in findings if f]
    return findings[-1] if findings else ""


def parse_report_path(path: Path, root: Path) -> tuple[int, int]:
    """``(subject_id, study_id)`` from ``files/p10/p10000032/s50414267.txt``."""
    name = REPORT_NAME.match(path.name)
    patient = PATIENT_DIR.match(path.parent.name)
    if not name or not patient:
        raise ReportError(f"{path}: not a report path files/pXX/pSUBJECT/sSTUDY.txt")
    return int(patient.group(1)), int(name.group(1))


def list_report_files(root: Path | str) -> list[Path]:
    root = Path(root)
    files_dir = root / "files"
    if not files_dir.is_dir():
        raise FileNotFoundError(f"{root}: no files/ folder of MIMIC-CXR reports")
    return sorted(files_dir.glob("p*/p*/*.txt"))


def ingest_reports(root: Path | str) -> tuple[pd.DataFrame, ExclusionLog]:
    """One row per report file: ``subject_id, study_id, findings, has_findings, report_path``.

    ``report_path`` is relative to ``root``. Unreadable or misnamed files are excluded with
    a reason; reports without FINDINGS are kept with ``has_findings = False``.
    """
    root = Path(root)
    log = ExclusionLog()
    rows = []
    for path in list_report_files(root):
        rel = path.relative_to(root).as_posix()
        try:
            subject_id, study_id = parse_report_path(path, root)
        except ReportError:
            log.add(DATASET, rel, "bad_report_name")
            continue
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            log.add(DATASET, rel, "unreadable_report")
            continue
        findings = extract_findings(text)
        rows.append((subject_id, study_id, findings, findings != "", rel))
    frame = pd.DataFrame(rows, columns=["subject_id", "study_id", "findings", "has_findings", "report_path"])
    frame = frame.astype({"subject_id": "int64", "study_id": "int64", "findings": str, "has_findings": bool})
    duplicated = frame.duplicated("study_id", keep="first")
    for rel in frame.loc[duplicated, "report_path"]:
        log.add(DATASET, rel, "duplicate_study_id")
    frame = frame.loc[~duplicated].reset_index(drop=True)
    return frame, log
