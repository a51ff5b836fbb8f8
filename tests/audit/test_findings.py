"""Each planted finding in tests/fixtures/audit-tree is reported exactly once,
at the planted line; the clean twin gives none.

The fixture marks every planted line with a `% plant:<code>` comment (the
reader ignores comments), so the expected places come from the fixture text,
not from the audit."""
from __future__ import annotations

import json
import re
from importlib import resources
from pathlib import Path

import jsonschema
import pytest

from specc.audit import audit
from specc.cli import main
from specc.upstream.tree import load_tree

ALL_CODES = {
    "block-unlisted", "conformance-item-dangling", "label-path-mismatch", "label-case-typo",
    "label-duplicate", "reference-undefined", "independent-bit-in-device-range",
    "device-bit-in-independent-range", "bit-reserved-for-future", "feature-bit-collision",
    "feature-bit-unallocated", "keyword-outside-block", "block-without-keyword",
}


def planted(root: Path) -> set[tuple[str, str, int]]:
    found = set()
    for f in sorted(root.glob("*.tex")):
        for n, line in enumerate(f.read_text().splitlines(), 1):
            m = re.search(r"% plant:([a-z-]+)\s*$", line)
            if m:
                found.add((m.group(1), f.name, n))
    return found


def test_fixture_plants_every_kind_of_finding(planted_tree):
    assert {code for code, _, _ in planted(planted_tree)} == ALL_CODES


def test_each_planted_finding_is_reported_once_at_its_line(planted_tree):
    findings = audit(load_tree(planted_tree))
    got = [(f.code, f.pos.file, f.pos.line) for f in findings]
    assert len(got) == len(set(got)), "a finding was reported twice"
    assert set(got) == planted(planted_tree)


def test_finding_columns_point_at_the_offending_text(planted_tree):
    findings = {f.code: f for f in audit(load_tree(planted_tree))}
    content = (planted_tree / "content.tex").read_text().splitlines()
    kw = findings["keyword-outside-block"]
    assert kw.name == "MAY"
    assert kw.pos.col == content[kw.pos.line - 1].index("MAY") + 1
    typo = findings["label-case-typo"]
    line = content[typo.pos.line - 1]
    # the path argument of \devicenormative starts after the third '{'
    assert typo.pos.col == line.index("{Basic Facilities / Device status}") + 2
    ref = findings["reference-undefined"]
    assert ref.name == "sec:Basic Facilities / Device Stats"
    assert ref.pos.col == content[ref.pos.line - 1].index("{sec:") + 2


def test_findings_name_the_offender(planted_tree):
    names = {f.code: f.name for f in audit(load_tree(planted_tree))}
    assert names["feature-bit-collision"] == "VIRTIO_WIDGET_F_QUICK"
    assert names["independent-bit-in-device-range"] == "VIRTIO_F_EARLY"
    assert names["device-bit-in-independent-range"] == "VIRTIO_WIDGET_F_QUEUE"
    assert names["feature-bit-unallocated"] == "VIRTIO_WIDGET_F_ODD"
    assert names["bit-reserved-for-future"] == "VIRTIO_F_LATER"
    assert names["conformance-item-dangling"] == "drivernormative:Basic Facilities / Device Reset"
    assert names["block-unlisted"] == "devicenormative:Basic Facilities / Notifications"
    assert names["label-duplicate"] == "sec:Basic Facilities / Notifications"
    assert names["block-without-keyword"] == "drivernormative:Basic Facilities / Queues"


def test_clean_twin_has_no_findings(clean_tree):
    assert audit(load_tree(clean_tree)) == []


def test_cli_text_and_exit_status(planted_tree, clean_tree, capsys):
    assert main(["audit", "--spec-tree", str(planted_tree)]) == 1
    out = capsys.readouterr().out.splitlines()
    assert len(out) == len(ALL_CODES)
    assert all(re.match(r"^[\w./-]+\.tex:\d+:\d+: (warning|error): ", line) for line in out)
    assert main(["audit", "--spec-tree", str(clean_tree)]) == 0
    assert capsys.readouterr().out == ""


def test_cli_json_matches_the_shipped_schema(planted_tree, capsys):
    assert main(["audit", "--spec-tree", str(planted_tree), "--format", "json"]) == 1
    doc = json.loads(capsys.readouterr().out)
    schema = json.loads(resources.files("specc").joinpath("schemas/audit.schema.json").read_text())
    jsonschema.validate(doc, schema)
    assert {f["code"] for f in doc["findings"]} == ALL_CODES
    assert sum(doc["summary"].values()) == len(ALL_CODES)


def _tree(top: str):
    def make(d: Path) -> None:
        (d / "virtio.tex").write_text(top)
        (d / "commands.tex").write_text("")
    return make


@pytest.mark.parametrize("make, needle", [
    (lambda d: None, "not a virtio spec tree"),
    (_tree("\\input{commands}\n\\input{gone.tex}\n"), "gone.tex"),
    (_tree("\\input{commands}\n\\chapter{A}\n\\begin{itemize}\n\\item x\n"), "never closed"),
    (_tree("\\input{commands}\n\\input{virtio}\n"), "includes itself"),
    (_tree("no sections here\n"), "reads no sections"),
])
def test_trees_the_reader_cannot_follow_exit_2_with_one_line(tmp_path, capsys, make, needle):
    make(tmp_path)
    assert main(["audit", "--spec-tree", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert needle in err and err.count("\n") == 1 and "Traceback" not in err


def test_a_file_is_not_a_tree(tmp_path, capsys):
    f = tmp_path / "x.tex"
    f.write_text("")
    assert main(["audit", "--spec-tree", str(f)]) == 2
    assert "not a directory" in capsys.readouterr().err


def test_hyperref_targets_are_references(tmp_path):
    line = "See \\hyperref[sec:B]{b} and \\hyperref[sec:A]{a}, or \\hyperref{http://x}{}{}{x}."
    _tree("\\input{commands}\n\\chapter{A}\\label{sec:A}\n" + line + "\n")(tmp_path)
    got = [(f.code, f.name, f.pos.line, f.pos.col) for f in audit(load_tree(tmp_path))]
    # the column is that of the label, just after the '['
    assert got == [("reference-undefined", "sec:B", 3, line.index("[sec:B]") + 2)]
