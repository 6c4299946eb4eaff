"""FINDINGS extraction over the header variants of FORMATS.md section 1."""

from pathlib import Path

import pytest

from crrg_clip.data.reports import extract_findings, ingest_reports, normalise_header, split_sections

TITLE = "                                 FINAL REPORT\n"


def report(*lines: str) -> str:
    """Every line starts with one space; blank separator lines are ' '."""
    return TITLE + "".join(" " + line + "\n" for line in lines)


BASIC = report(
    "EXAMINATION:  CHEST (PA AND LAT)",
    "",
    "INDICATION:  ___F with cough.",
    "",
    "FINDINGS:",
    "",
    "The lungs are clear. There is no pleural effusion or",
    "pneumothorax.  Heart size is normal.",
    "",
    "IMPRESSION:",
    "",
    "No acute cardiopulmonary process.",
)


def test_basic_findings_lines_joined_and_collapsed():
    assert extract_findings(BASIC) == (
        "The lungs are clear. There is no pleural effusion or pneumothorax. Heart size is normal."
    )


def test_text_on_header_line():
    text = report("INDICATION:  Cough.", "", "FINDINGS:  No focal consolidation.", "Mild", "cardiomegaly.",
                  "", "IMPRESSION:  Mild cardiomegaly.")
    assert extract_findings(text) == "No focal consolidation. Mild cardiomegaly."


def test_findings_and_impression_is_impression():
    text = report("INDICATION:  Cough.", "", "FINDINGS AND IMPRESSION:  No pneumonia.")
    assert extract_findings(text) == ""
    assert [name for name, _ in split_sections(text)][-1] == "impression"


def test_conclusion_is_impression():
    assert normalise_header("CONCLUSION") == "impression"
    assert normalise_header("FINDINGS/IMPRESSION") == "impression"


@pytest.mark.parametrize("header", ["PA AND LATERAL", "PORTABLE", "AP VIEW", "PORTABLE AP", "PA AND LAT"])
def test_view_name_headers_are_findings(header):
    assert normalise_header(header) == "findings"
    text = report("INDICATION:  Fever.", "", f"{header}:  Right lower lobe opacity.", "",
                  "IMPRESSION:  Pneumonia.")
    assert extract_findings(text) == "Right lower lobe opacity."


def test_finidngs_typo():
    text = report("FINIDNGS:  Small left effusion.", "", "IMPRESSION:  Effusion.")
    assert extract_findings(text) == "Small left effusion."


def test_addendum_above_underscores_is_ignored():
    text = (" ADDENDUM:  FINDINGS: Wrong patient, see ___.\n"
            " ______________________________________________________________________________\n"
            + BASIC)
    assert extract_findings(text).startswith("The lungs are clear.")
    assert "Wrong patient" not in " ".join(body for _, body in split_sections(text))


def test_no_findings_section():
    text = report("INDICATION:  Line placement.", "", "IMPRESSION:  Tube in good position.")
    assert extract_findings(text) == ""


def test_two_findings_sections_last_wins_and_empty_dropped():
    text = report("FINDINGS:  First read.", "", "FINDINGS:  Second read, final.", "", "FINDINGS:", " ",
                  "IMPRESSION:  Done.")
    assert extract_findings(text) == "Second read, final."


def test_only_one_space_indent_starts_a_header():
    # A colon inside a wrapped line that does not start with exactly one space + capitals
    # (e.g. a time "10:30") is not a header.
    text = report("FINDINGS:  Film taken at 10:30 shows", "clear lungs.", "", "IMPRESSION:  Normal.")
    assert extract_findings(text) == "Film taken at 10:30 shows clear lungs."


def test_ingest_reports_rows_and_exclusions(tmp_path: Path):
    root = tmp_path / "reports"
    good = root / "files" / "p10" / "p10000032"
    good.mkdir(parents=True)
    (good / "s50414267.txt").write_text(BASIC)
    (good / "s50000001.txt").write_text(report("IMPRESSION:  Normal."))
    (good / "notes.txt").write_text("stray file")
    (good / "s50000002.txt").write_bytes(b"\xff\xfe\x00bad")
    frame, log = ingest_reports(root)
    assert list(frame.columns) == ["subject_id", "study_id", "findings", "has_findings", "report_path"]
    assert sorted(frame["study_id"]) == [50000001, 50414267]
    assert frame.set_index("study_id").loc[50000001, "has_findings"] == False  # noqa: E712
    assert frame["subject_id"].unique().tolist() == [10000032]
    assert frame.set_index("study_id").loc[50414267, "report_path"] == "files/p10/p10000032/s50414267.txt"
    reasons = {(item, reason) for _, item, reason in log.rows}
    assert reasons == {("files/p10/p10000032/notes.txt", "bad_report_name"),
                       ("files/p10/p10000032/s50000002.txt", "unreadable_report")}
