"""docs/FILES.md's "From a rule to its code" table is complete and true: every rule of the
workflow has a row, the row names the rule's file and adapter, and its package function
exists and is what the adapter calls (at most three files from a rule to the work)."""

import importlib
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RULE = re.compile(r"^rule (\w+):", re.M)
USE_RULE = re.compile(r"^use rule (\w+) as (\w+)", re.M)
SCRIPT = re.compile(r'script:\s*\n\s*"\.\./scripts/(\w+\.py)"')


def workflow_rules() -> dict[str, tuple[str, str | None]]:
    """``rule -> (rule file, adapter)`` parsed from the rule files."""
    rules = {}
    for path in sorted((ROOT / "workflow" / "rules").glob("*.smk")):
        text = path.read_text()
        starts = [(m.start(), m.group(1)) for m in RULE.finditer(text)] + [(len(text), None)]
        for (start, name), (end, _) in zip(starts, starts[1:]):
            script = SCRIPT.search(text[start:end])
            rules[name] = (path.name, script.group(1) if script else None)
        for base, name in USE_RULE.findall(text):
            rules[name] = (path.name, rules[base][1])
    return rules


def documented_rows() -> dict[str, list[str]]:
    text = (ROOT / "docs" / "FILES.md").read_text()
    section = text[text.index("## From a rule to its code"):]
    rows = {}
    for line in section.splitlines():
        cells = [c.strip().strip("`") for c in line.strip().strip("|").split("|")]
        if len(cells) == 4 and cells[0] not in ("rule", "---") and not set(cells[0]) <= {"-"}:
            rows[cells[0]] = cells[1:]
    return rows


def test_every_rule_has_a_true_row():
    rules, rows = workflow_rules(), documented_rows()
    assert "generate_reports" in rules and "train_detector" in rules  # the parser sees both kinds of rule
    assert sorted(rows) == sorted(rules), "docs/FILES.md must list exactly the workflow's rules"
    for name, (rule_file, adapter) in rules.items():
        doc_file, doc_adapter, function = rows[name]
        assert doc_file == rule_file, name
        assert doc_adapter == adapter, name
        module, _, attr = function.rpartition(".")
        assert hasattr(importlib.import_module(module), attr), f"{name}: {function} does not exist"
        source = (ROOT / "workflow" / "scripts" / adapter).read_text()
        assert re.search(rf"\b{re.escape(attr)}\b", source), f"{name}: {adapter} does not call {attr}"
