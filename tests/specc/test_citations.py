"""Citations: a check attached to an upstream statement by block label and a
short fragment (or its number), the statement's fingerprint recorded in the
id registry, and OUTDATED for exactly the checks of a statement reworded
upstream.

The tree is tests/fixtures/spec-tree-mini (real v1.4-cs01 labels, short
invented wording); "reworded" copies it and changes one sentence."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from specc.upstream.statements import block_statements, resolve
from specc.upstream.tree import load_tree
from tests.spec_trees import MINI, reword, upstream_checkout, upstream_copy

from .conftest import SPEC

RFB_DRV = "drivernormative:Reserved Feature Bits"

MODULE = f'''module cited {{
  kind baseline
  title "Citations for the test"
  base "virtio-v1.4-cs01"
}}

cite t.rfb.drv.order SHOULD in "{RFB_DRV}" at "accept VIRTIO_F_ORDER_PLATFORM" {{
  check accepts-order {{
    result valid
    given target driver
    given offered VIRTIO_F_ORDER_PLATFORM
    expect accepted has VIRTIO_F_ORDER_PLATFORM
  }}
  check accepts-order-again {{
    result valid
    given target driver
    given offered VIRTIO_F_ORDER_PLATFORM
    expect accepted has VIRTIO_F_ORDER_PLATFORM
  }}
}}

cite t.rfb.drv.version MUST in "{RFB_DRV}" at 1 {{
  check accepts-v1 {{
    result valid
    given target driver
    expect accepted has VIRTIO_F_VERSION_1
  }}
}}

cite t.rfb.drv.iommu MUST in "{RFB_DRV}" at "either disable the IOMMU" {{
  untestable "How the driver programs an IOMMU is not visible to the device."
}}
'''


@pytest.fixture
def cited(tmp_path, specc) -> Path:
    """The module with its registry recorded against the mini tree."""
    f = tmp_path / "cited.vspec"
    f.write_text(MODULE, encoding="utf-8")
    code, out, err = specc("ids", "--update", "--spec-tree", str(MINI), str(f))
    assert code == 0, err
    return f


def reworded_tree(tmp_path: Path, old: str, new: str) -> Path:
    tree = tmp_path / "tree"
    shutil.copytree(MINI, tree)
    return reword(tree, old, new)


def test_statements_of_a_block_are_its_keyword_sentences():
    tree = load_tree(MINI)
    sts = block_statements(tree, RFB_DRV)
    assert [s.keywords for s in sts] == [("MUST",), ("SHOULD", "MUST"), ("MUST",), ("MUST",),
                                         ("SHOULD",), ("MUST",)]
    assert sum(len(s.keywords) for s in sts) == len(tree.block_by_label(RFB_DRV).keywords)
    # whitespace in the fragment matches any run of spaces and line breaks
    assert resolve(tree, RFB_DRV, "then  set up the platform's", None).index == 2
    assert resolve(tree, RFB_DRV, None, 5).where == "content.tex:79"


def test_registry_records_the_upstream_fingerprint(cited, specc):
    data = json.loads((cited.parent / "ids.json").read_text(encoding="utf-8"))
    rows = {r["id"]: r for r in data["statements"]}
    tree = load_tree(MINI)
    assert rows["t.rfb.drv.version"]["upstream"] == block_statements(tree, RFB_DRV)[0].fingerprint
    assert {r["keyword"] for r in rows.values()} == {"SHOULD", "MUST"}
    code, out, err = specc("check", "--spec-tree", str(MINI), str(cited))
    assert code == 0, err
    assert "3 normative statements" in out and "3 checks, 1 untestable" in out


def test_reworded_statement_makes_exactly_its_checks_outdated(cited, tmp_path, specc):
    tree = reworded_tree(tmp_path, "A driver SHOULD accept VIRTIO_F_ORDER_PLATFORM if it is offered.",
                         "A driver SHOULD accept VIRTIO_F_ORDER_PLATFORM whenever it is offered.")
    code, out, err = specc("check", "--spec-tree", str(tree), str(cited))
    assert code == 2
    errors = [line for line in err.splitlines() if ": error: " in line]
    assert len(errors) == 1, err
    assert "OUTDATED" in errors[0] and "t.rfb.drv.order" in errors[0]
    assert errors[0].endswith("its checks are OUTDATED: t.rfb.drv.order/accepts-order, "
                              "t.rfb.drv.order/accepts-order-again")
    assert errors[0].startswith(f"{cited}:7:6: error:")
    assert "content.tex:79" in errors[0]
    # a layout change (line breaks, spacing) is not a rewording
    tree2 = reworded_tree(tmp_path / "b", "A driver MUST accept VIRTIO_F_VERSION_1 if it is offered.",
                          "A driver MUST accept\n   VIRTIO_F_VERSION_1 if it is   offered.")
    assert specc("check", "--spec-tree", str(tree2), str(cited))[0] == 0
    # recording the new wording clears it
    assert specc("ids", "--update", "--spec-tree", str(tree), str(cited))[0] == 0
    assert specc("check", "--spec-tree", str(tree), str(cited))[0] == 0


def test_outdated_untestable_says_so(cited, tmp_path, specc):
    tree = reworded_tree(tmp_path, "To do so it MUST then either disable the IOMMU",
                         "To do so it MUST at once either disable the IOMMU")
    code, out, err = specc("check", "--spec-tree", str(tree), str(cited))
    assert code == 2 and "t.rfb.drv.iommu" in err and "its untestable reason is OUTDATED" in err


@pytest.mark.parametrize("where, at, message", [
    ("drivernormative:Reserved Feature Bit", '"accept"',
     "no normative block 'drivernormative:Reserved Feature Bit' in the tree"),
    (RFB_DRV, '"purple elephants"', f"no keyword statement of {RFB_DRV} contains 'purple elephants'"),
    (RFB_DRV, '"VIRTIO_F_ACCESS_PLATFORM"',
     "'VIRTIO_F_ACCESS_PLATFORM' is in 2 keyword statements of " + RFB_DRV),
    (RFB_DRV, "7", f"statement 7 is out of range: {RFB_DRV} has 6 keyword statements"),
])
def test_bad_citation_is_a_one_line_error_at_its_place(write, specc, where, at, message):
    f = write("bad.vspec", 'module bad {\n  kind baseline\n}\n'
                           f'cite x.bad MUST in "{where}" at {at} {{\n  untestable "u"\n}}\n')
    code, out, err = specc("check", "--no-registry", "--spec-tree", str(MINI), f)
    assert code == 2
    first = err.splitlines()[0]
    col = 20 if "Bit\"" in f"{where}\"" else len(f'cite x.bad MUST in "{where}" at ') + 1
    assert first == f"{f}:4:{col}: error: citation x.bad: {message}" or \
        first.startswith(f"{f}:4:") and message in first, first
    assert err.count(": error: ") == 1


def test_declared_keyword_must_be_the_statement_s(write, specc):
    f = write("kw.vspec", f'module kw {{\n  kind baseline\n}}\ncite x.kw MAY in "{RFB_DRV}" at 1 {{\n'
                          '  untestable "u"\n}\n')
    code, out, err = specc("check", "--no-registry", "--spec-tree", str(MINI), f)
    assert code == 2
    assert "citation x.kw is declared MAY but the statement it picks out (content.tex:71) says MUST" in err


def test_a_long_fragment_is_refused_without_a_tree(write, specc):
    f = write("long.vspec", f'module long {{\n  kind baseline\n}}\ncite x.long MUST in "{RFB_DRV}" '
                            'at "then set up the platform\'s address translation for every address" {\n'
                            '  untestable "u"\n}\n')
    code, out, err = specc("check", "--no-registry", f)
    assert code == 2
    assert "the fragment of citation x.long has 10 words; quote at most 8" in err


def test_unrecorded_citation_needs_the_tree(write, specc, tmp_path):
    f = write("new.vspec", MODULE)
    code, out, err = specc("ids", "--update", f)
    assert code == 2 and err.count("\n") == 1
    assert "is new or changed: give --spec-tree PATH" in err
    (tmp_path / "ids.json").write_text(json.dumps({"format": "specc-ids/1", "statements": [
        {"id": "t.rfb.drv.order", "fingerprint": "x", "module": "cited", "keyword": "SHOULD"}]}))
    code, out, err = specc("check", f)
    assert code == 2


def test_docs_quote_the_statement_with_a_tree_and_cite_it_without(cited, tmp_path, specc):
    out_tree, out_none = tmp_path / "d1", tmp_path / "d2"
    assert specc("docs", "--spec-tree", str(MINI), "-o", str(out_tree), str(cited))[0] == 0
    assert specc("docs", "-o", str(out_none), str(cited))[0] == 0
    with_tree = (out_tree / "cited.html").read_text(encoding="utf-8")
    without = (out_none / "cited.html").read_text(encoding="utf-8")
    assert "A driver SHOULD accept VIRTIO_F_ORDER_PLATFORM if it is offered." in with_tree
    assert "content.tex, line 79" in with_tree
    assert "VIRTIO_F_ORDER_PLATFORM if it is offered" not in without
    assert "Cites the statement at" in without and "accept VIRTIO_F_ORDER_PLATFORM" in without


def test_vectors_carry_the_citation_not_the_wording(cited, tmp_path, specc):
    assert specc("vectors", "-o", str(tmp_path / "v"), str(cited))[0] == 0
    doc = json.loads(next((tmp_path / "v").glob("*.json")).read_text(encoding="utf-8"))
    req = doc["requirements"]["t.rfb.drv.version"]
    assert req["cites"] == {"at": None, "index": 1, "upstream": "a53ac504f376"}
    assert req["label"] == RFB_DRV
    assert req["text"] == f"cites statement 1 of {RFB_DRV}"


def test_coverage_counts_cited_statements_exactly(cited, capsys):
    from specc.cli import main
    rc = main(["audit", "--spec-tree", str(MINI), "--coverage", "--format", "json",
               "--spec", str(cited.parent)])
    assert rc == 1
    cov = json.loads(capsys.readouterr().out)["coverage"]
    rfb = next(c for c in cov["chapters"] if c["chapter"] == "Reserved Feature Bits")
    # statement 5 (SHOULD) and 1 (MUST) tested, statement 3 (MUST) untestable
    assert (rfb["keywords_cited"], rfb["keywords_tested"], rfb["keywords_untestable"]) == (3, 2, 1)
    assert rfb["blocks_restated"] == 1 and rfb["blocks_tested"] == 1
    assert cov["unresolved"] == []


def test_real_tree_reworded_statement_outdates_exactly_its_checks(tmp_path, specc):
    """The shipped modules against a copy of v1.4-cs01 in which one cited
    sentence is reworded (skipped without VIRTIO_SPEC_TREE)."""
    tree = reword(upstream_copy(tmp_path / "virtio-spec"),
                  "The device MUST allow reading of any device-specific configuration\nfield",
                  "The device MUST let the driver read any device-specific configuration field")
    sources = sorted(str(p) for p in SPEC.glob("*.vspec"))
    assert specc("check", "--spec-tree", str(upstream_checkout()), *sources)[0] == 0
    code, out, err = specc("check", "--spec-tree", str(tree), *sources)
    assert code == 2
    errors = [line for line in err.splitlines() if ": error: " in line]
    assert len(errors) == 1, err
    assert "OUTDATED: the upstream statement base.cfg.dev.read-before-features-ok cites changed " \
           "(content.tex:318" in errors[0]
    assert errors[0].endswith("its checks are OUTDATED: "
                              "base.cfg.dev.read-before-features-ok/capacity-before-features-ok")
