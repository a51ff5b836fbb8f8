"""The real-tree test of amendments: a module that amends the ACCESS_PLATFORM
driver requirement of virtio v1.4-cs01 in place (and adds and cites a
bibliography entry). Its series applies with `git am` to the tag, builds
with XeLaTeX without a LaTeX warning (one build, shared), and the docs page
shows the amendment as a diff against the upstream wording. Skips without
the checkout (VIRTIO_SPEC_TREE)."""
from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from specc.patch.build import build_tree

from tests.emit.conftest import ROOT, specc
from tests.spec_trees import GIT_ENV, git, upstream_checkout

MODULE = ROOT / "tests" / "fixtures" / "amend" / "access_platform.vspec"
SIGNOFF = "Ann Author <ann@virtio.dev>"


@pytest.fixture(scope="module")
def applied(tmp_path_factory) -> Path:
    """A clean clone of the real checkout with the module's series applied by git am."""
    upstream = upstream_checkout()
    tmp = tmp_path_factory.mktemp("amend-real")
    out = tmp / "out"
    proc = specc("patch", str(MODULE), "--spec-tree", str(upstream), "-o", str(out),
                 "--signoff", SIGNOFF)
    assert proc.returncode == 0, proc.stderr
    clone = tmp / "clean"
    subprocess.run(["git", "clone", "-q", str(upstream), str(clone)], check=True,
                   capture_output=True, env=GIT_ENV)
    git(clone, "checkout", "-q", "--detach", git(upstream, "rev-parse", "HEAD").strip())
    patches = sorted(out.glob("*.patch"))[1:]
    subprocess.run(["git", "am", "-q", *map(str, patches)], cwd=clone, env=GIT_ENV,
                   check=True, capture_output=True)
    return clone


def test_the_series_applies_and_changes_the_statement_in_place(applied) -> None:
    content = (applied / "content.tex").read_text()
    flat = " ".join(content.split())
    start = flat.index("A driver SHOULD accept VIRTIO_F_ACCESS_PLATFORM")
    sentence = flat[start:flat.index(". If VIRTIO_F_ACCESS_PLATFORM is not offered", start)]
    # the upstream sentence keeps its words and gains the exception, in place
    assert sentence.endswith("into physical addresses in memory, except for addresses inside a "
                             "memory region that the device itself provides (on platforms "
                             "described by a device tree, for example a restricted DMA pool, see "
                             "\\hyperref[intro:RESTRICTED-DMA-POOL]{[RESTRICTED-DMA-POOL]}), "
                             "which the driver passes untranslated")
    assert flat.count("A driver SHOULD accept VIRTIO_F_ACCESS_PLATFORM") == 1
    intro = (applied / "introduction.tex").read_text()
    assert "\\phantomsection\\label{intro:RESTRICTED-DMA-POOL}" in intro
    log = git(applied, "log", "--format=%s", "-2").splitlines()
    assert [s.split(":")[0] for s in log] == ["content", "introduction"]


@pytest.mark.xelatex
def test_the_amended_tree_builds_without_a_latex_warning(applied) -> None:
    if shutil.which("xelatex") is None:
        pytest.skip("xelatex is not installed (texlive-xetex)")
    result = build_tree(applied)      # raises BuildError on any LaTeX warning
    assert result.pdf.is_file() and result.runs == 3


def test_the_docs_page_shows_the_diff(tmp_path) -> None:
    out = tmp_path / "docs"
    proc = specc("docs", str(MODULE), "--spec-tree", str(upstream_checkout()), "-o", str(out))
    assert proc.returncode == 0, proc.stderr
    html = (out / "ap.html").read_text()
    m = re.search(r'physical addresses in memory<span class="amend-del">\.</span>\s*'
                  r'<span class="amend-ins">, except for addresses inside a memory region that '
                  r'the device itself provides \(on platforms', html) or \
        re.search(r'physical addresses in memory<span class="amend-ins">, except for addresses '
                  r'inside a memory region', html)
    assert m, html[html.find("Amends"):][:2000]
    assert "content.tex, line 954" in html
    assert "see [RESTRICTED-DMA-POOL])" in html
    assert 'id="reference-restricted-dma-pool"' in html
