"""The --build runner: XeLaTeX three times, fail on a TeX error or any LaTeX Warning."""
from __future__ import annotations

import shutil
import subprocess
import sys

import pytest

from specc.patch import Edit, Labelled, Line
from specc.patch.build import BuildError, build_tree
from specc.patch.series import SeriesError, write_series

from tests.emit.conftest import SWIOTLB
from tests.spec_trees import MINI
from .swiotlb_edits import swiotlb_edits, swiotlb_options

pytestmark = [pytest.mark.xelatex,
              pytest.mark.skipif(shutil.which("xelatex") is None, reason="xelatex not installed")]

MMIO_LEGACY = "sec:Virtio Transport Options / Virtio Over MMIO / Legacy interface"


def test_unmodified_mini_tree_builds(tmp_path):
    work = tmp_path / "mini"
    shutil.copytree(MINI, work)
    result = build_tree(work)
    assert result.pdf.is_file() and result.pdf.stat().st_size > 1000
    assert result.runs in (2, 3) and result.pages


def test_patched_mini_tree_builds_and_pdf_lands_in_output(mini_repo, tmp_path):
    out = tmp_path / "out"
    write_series(mini_repo, swiotlb_edits(), out, swiotlb_options(), build=True)
    assert (out / "virtio.pdf").is_file()


def test_undefined_reference_fails_the_build_with_the_log(mini_repo, tmp_path):
    # A citation the static label check does not read: only XeLaTeX finds it,
    # in the prefix that adds it (patch 3), and the error says which.
    edits = swiotlb_edits() + [Edit("transport-mmio.tex", Labelled(MMIO_LEGACY),
                                    "See \\cite{Nowhere At All}.\n\n", "transport-mmio", "before")]
    out = tmp_path / "out"
    with pytest.raises(SeriesError) as exc:
        write_series(mini_repo, edits, out, swiotlb_options(), build=True)
    msg = str(exc.value)
    assert msg.startswith("patch 3/5 (transport-mmio): ")
    assert "LaTeX warning" in msg and "Nowhere At All" in msg and str(out / "build.log") in msg
    assert "LaTeX Warning" in (out / "build.log").read_text(errors="replace")


def test_duplicate_label_fails_the_build(tmp_path):
    work = tmp_path / "mini"
    shutil.copytree(MINI, work)
    with open(work / "content.tex", "a") as f:
        f.write("\n\\label{sec:Reserved Feature Bits}\n")
    with pytest.raises(BuildError, match="multiply defined"):
        build_tree(work)


def test_tex_error_stops_at_once(mini_repo, tmp_path):
    edits = [Edit("content.tex", Line("\\input{admin.tex}"), "\\nosuchmacro\n", "content", "before")]
    with pytest.raises(SeriesError, match=r"xelatex run 1 failed: ! Undefined control sequence"):
        write_series(mini_repo, edits, tmp_path / "out", swiotlb_options(), build=True)


# The real tree's build (every prefix of the SWIOTLB series) is shared by the
# session: tests/emit/test_patch.py::test_every_prefix_of_the_swiotlb_series_builds.


def test_specc_patch_build_reports_passes_and_names_the_pdf(mini_repo, tmp_path):
    """On the mini tree (seconds): the command line's progress and PDF name."""
    out = tmp_path / "out"
    proc = subprocess.run([sys.executable, "-m", "specc.cli", "patch", str(SWIOTLB),
                           "--spec-tree", str(mini_repo), "-o", str(out), "--signoff",
                           "Ada Author <ada@author.test>", "--build"],
                          cwd=SWIOTLB.parents[1], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    # the proposal's bibliography entry comes first, in an introduction: patch
    assert lines[0].startswith("patch 1/6 (introduction): xelatex pass 1 (at most 3): ")
    assert sum("builds with 0 LaTeX warnings" in ln for ln in lines) == 6
    assert f"PDF of the whole series: {out / 'swiotlb-v1.pdf'}" in lines
    assert (out / "swiotlb-v1.pdf").is_file() and not (out / "virtio.pdf").exists()


def test_a_forward_reference_that_cannot_move_stops_before_any_build(mini_repo, tmp_path):
    edits = swiotlb_edits() + [Edit("content.tex", Line("\\input{admin.tex}"),
                                    "\\begin{itemize}\n\\item \\ref{sec:" + MMIO_LEGACY[4:]
                                    .replace("Legacy interface", "Bounce buffer region")
                                    + "}\n", "content", "before")]
    with pytest.raises(SeriesError, match=r"cannot be held back"):
        write_series(mini_repo, edits, tmp_path / "out", swiotlb_options(), build=True)
    assert not (tmp_path / "out" / "build.log").exists()
