"""Amendments: upstream text changed in place, located by short fragments.

The golden module amends the ACCESS_PLATFORM driver requirement of the mini
fixture tree (its wording is the fixture's own); the pinned outputs are the
patched passage as a unified diff of content.tex and the docs page showing
the change as a diff against the upstream wording.
"""
from __future__ import annotations

import difflib
import json
import re
import subprocess
from pathlib import Path

import pytest

from specc.amend import AmendError, apply_amendment, word_diff
from specc.audit.coverage import coverage_for
from specc.emit.latex import RefIndex
from specc.emit.rst import module_rst
from specc.emit.vectors import display_path, module_vectors
from specc.load import load
from specc.model import Module
from specc.patch.edit import apply_edits
from specc.patch.latex_edits import module_edits
from specc.upstream.tree import load_tree

from tests.emit.conftest import ROOT, specc
from tests.emit.golden import check_golden
from tests.spec_trees import GIT_ENV, MINI

AMEND = ROOT / "tests" / "fixtures" / "amend"
MINI_MODULE = AMEND / "access_platform_mini.vspec"


def _module(path: Path) -> Module:
    loaded = load([str(path)])
    assert not [d for d in loaded.diagnostics if d.is_error], loaded.diagnostics
    return loaded.modules[0]


def _source(text: str, tmp_path: Path, name: str = "m.vspec") -> Module:
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    return _module(p)


HEADER = 'module m {\n  kind proposal\n  title "t"\n  base "virtio-v1.4-cs01"\n}\n'


@pytest.fixture(scope="module")
def mini_tree():
    return load_tree(MINI)


@pytest.fixture(scope="module")
def ap_mini() -> Module:
    return _module(MINI_MODULE)


# -- the model -----------------------------------------------------------------------------------

def test_an_amended_statement_has_an_id_a_keyword_a_fingerprint_and_checks(ap_mini) -> None:
    (stmt_amend, para_amend) = ap_mini.amendments
    st = stmt_amend.statement
    assert (st.id, st.keyword, st.role, st.block_path) == \
        ("apm.drv.access-platform", "MUST", "driver", "Reserved Feature Bits")
    assert len(st.fingerprint) == 12 and [c.name for c in st.checks] == ["accepts-when-offered"]
    # the locating fragment is matched with whitespace normalised
    assert stmt_amend.at == "set up the platform's address translation"
    assert para_amend.statement is None and para_amend.unit == "paragraph"
    assert st in list(ap_mini.all_statements())


def test_the_fingerprint_follows_the_edits_not_the_layout(tmp_path) -> None:
    body = ('amend statement m.a MUST in "drivernormative:Reserved Feature Bits" at "{at}" {{\n'
            '  insert after "to the device" """{new}"""\n  untestable "u"\n}}\n')
    a = _source(HEADER + body.format(at="set up the", new=", x"), tmp_path, "a.vspec")
    b = _source(HEADER + body.format(at="set   up   the", new=",  x"), tmp_path, "b.vspec")
    c = _source(HEADER + body.format(at="set up the", new=", y"), tmp_path, "c.vspec")
    fa, fb, fc = (m.amendments[0].statement.fingerprint for m in (a, b, c))
    assert fa == fb != fc


# -- applying it to a tree ----------------------------------------------------------------------

def test_golden_patched_passage(ap_mini, mini_tree) -> None:
    edits = module_edits(ap_mini, mini_tree)
    new = apply_edits(mini_tree, edits)["content.tex"]
    old = mini_tree.sources["content.tex"].text
    diff = "".join(difflib.unified_diff(old.splitlines(True), new.splitlines(True),
                                        "a/content.tex", "b/content.tex", n=1))
    check_golden("amend_access_platform.diff", diff)
    assert "every address it passes\nto the device, except an address inside" in new


def test_golden_docs_page_shows_the_diff(ap_mini, mini_tree) -> None:
    page = module_rst(ap_mini, tree=mini_tree)
    check_golden("amend_access_platform.rst", page)
    assert ":amend-ins:`, except an address inside a memory region that the device itself " \
           "provides, which needs none`" in page
    assert ":amend-del:`Currently`" in page and ":amend-ins:`In this version`" in page


def test_without_a_tree_the_page_says_so_and_shows_the_edits(ap_mini) -> None:
    page = module_rst(ap_mini)
    assert "No upstream tree was given" in page
    assert re.search(r"- insert after \u201cevery address it passes to the device\u201d: "
                     r"\u201c\\?, except an address inside", page)
    assert "- replace \u201cCurrently\u201d with \u201cIn this version\u201d" in page
    assert ":amend-ins:" not in page


def test_html_marks_removed_and_added_words(tmp_path) -> None:
    out = tmp_path / "docs"
    proc = specc("docs", str(MINI_MODULE), "--spec-tree", str(MINI), "-o", str(out))
    assert proc.returncode == 0, proc.stderr
    html = (out / "ap_mini.html").read_text()
    assert re.search(r'<span class="amend-del">Currently</span>\s*<span class="amend-ins">In '
                     r'this version</span>', html)
    assert ".amend-del" in (out / "style.css").read_text()


def test_word_diff_keeps_punctuation_apart() -> None:
    assert word_diff("in memory. Next", "in memory, except here. Next") == \
        [("same", "in memory"), ("ins", ", except here"), ("same", ". Next")]
    assert word_diff("a b c", "a c") == [("same", "a "), ("del", "b "), ("same", "c")]


def test_edits_on_the_mini_tree_apply_with_git_am(ap_mini, mini_repo, tmp_path) -> None:
    out = tmp_path / "out"
    proc = specc("patch", str(MINI_MODULE), "--spec-tree", str(mini_repo), "-o", str(out),
                 "--signoff", "Ann Author <ann@virtio.dev>")
    assert proc.returncode == 0, proc.stderr
    patches = sorted(out.glob("0*.patch"))[1:]
    subprocess.run(["git", "am", "-q", *map(str, patches)], cwd=mini_repo, env=GIT_ENV,
                   check=True, capture_output=True)
    text = (mini_repo / "content.tex").read_text()
    assert "In this version these device-independent feature bits" in text
    assert "which needs none." in text


@pytest.mark.parametrize("at, message, candidates", [
    ("not in the tree at all", "no statement of drivernormative:Reserved Feature Bits contains",
     ["content.tex:"]),
    ("VIRTIO_F_ACCESS_PLATFORM",
     "'VIRTIO_F_ACCESS_PLATFORM' is in 2 statements of drivernormative:Reserved Feature Bits",
     ["A driver SHOULD accept", "Without VIRTIO_F_ACCESS_PLATFORM"]),
])
def test_a_missing_or_ambiguous_fragment_is_a_diagnostic_with_candidates(
        tmp_path, at, message, candidates) -> None:
    src = HEADER + (f'amend statement m.a MUST in "drivernormative:Reserved Feature Bits" '
                    f'at "{at}" {{\n  delete "x"\n  untestable "u"\n}}\n')
    path = tmp_path / "m.vspec"
    path.write_text(src)
    proc = specc("check", "--no-registry", "--spec-tree", str(MINI), str(path))
    assert proc.returncode == 2
    col = src.splitlines()[5].index(f'"{at}"') + 1
    assert f"m.vspec:6:{col}: error: {message}" in proc.stderr
    assert "hint: candidates:" in proc.stderr
    for c in candidates:
        assert c in proc.stderr


def test_an_edit_fragment_outside_the_passage_is_an_error(ap_mini, mini_tree, tmp_path) -> None:
    src = HEADER + ('amend paragraph in "Reserved Feature Bits" at "these device-independent" {\n'
                    '  delete "no such words"\n}\n')
    m = _source(src, tmp_path)
    with pytest.raises(AmendError) as exc:
        apply_amendment(mini_tree, m.amendments[0], RefIndex.of(m))
    assert exc.value.pos.line == 7 and "does not contain 'no such words'" in exc.value.message


def test_a_statement_amendment_must_name_a_normative_block(tmp_path) -> None:
    path = tmp_path / "m.vspec"
    path.write_text(HEADER + 'amend statement m.a MUST in "Reserved Feature Bits" at "x" {\n'
                             '  delete "x"\n  untestable "u"\n}\n')
    proc = specc("check", "--no-registry", str(path))
    assert proc.returncode == 2
    assert "error: an amended statement is located in a normative block" in proc.stderr


# -- ids, vectors and coverage count it -------------------------------------------------------------

def test_ids_registry_records_the_amended_statement(tmp_path) -> None:
    registry = tmp_path / "ids.json"
    proc = specc("ids", "--update", "--registry", str(registry), str(MINI_MODULE))
    assert proc.returncode == 0, proc.stderr
    data = json.loads(registry.read_text())
    text = json.dumps(data)
    assert "apm.drv.access-platform" in text
    proc = specc("check", "--registry", str(registry), str(MINI_MODULE))
    assert proc.returncode == 0, proc.stderr


def test_vectors_attach_the_checks_to_the_amended_statement(ap_mini) -> None:
    doc = module_vectors(ap_mini, MINI_MODULE.read_bytes(), display_path(str(MINI_MODULE)))
    req = doc["requirements"]["apm.drv.access-platform"]
    assert req["label"] == "drivernormative:Reserved Feature Bits" and req["keyword"] == "MUST"
    tests = [t for g in doc["testGroups"] for t in g["tests"]]
    assert [t["requirement"] for t in tests] == ["apm.drv.access-platform"]


def test_coverage_counts_the_amended_block(mini_tree, tmp_path) -> None:
    spec = tmp_path / "spec"
    spec.mkdir()
    (spec / "ap.vspec").write_text(MINI_MODULE.read_text())
    cov = coverage_for(mini_tree, str(spec), None)
    assert "drivernormative:Reserved Feature Bits" not in [lab for lab, *_ in cov.missing]
    assert cov.totals.blocks_restated == 1 and cov.totals.blocks_tested == 1


def test_a_long_quoted_fragment_is_a_warning(tmp_path) -> None:
    long = "A driver SHOULD accept VIRTIO_F_ACCESS_PLATFORM if it is offered, and it MUST then"
    path = tmp_path / "m.vspec"
    path.write_text(HEADER + f'amend paragraph in "Reserved Feature Bits" at "{long}" {{\n'
                             '  delete "then"\n}\n')
    proc = specc("check", "--no-registry", str(path))
    assert proc.returncode == 0
    assert "m.vspec:6:47: warning: a quoted fragment of 13 words: quote a short locating " \
           "fragment (at most 12 words)" in proc.stderr
