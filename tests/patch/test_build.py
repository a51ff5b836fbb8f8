"""The --build runner: XeLaTeX three times, fail on a TeX error or any LaTeX Warning."""
from __future__ import annotations

import shutil

import pytest

from specc.patch import Edit, Labelled, Line
from specc.patch.build import BuildError, build_tree
from specc.patch.series import SeriesError, write_series

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
    assert result.runs == 3


def test_patched_mini_tree_builds_and_pdf_lands_in_output(mini_repo, tmp_path):
    out = tmp_path / "out"
    write_series(mini_repo, swiotlb_edits(), out, swiotlb_options(), build=True)
    assert (out / "virtio.pdf").is_file()


def test_undefined_reference_fails_the_build_with_the_log(mini_repo, tmp_path):
    edits = swiotlb_edits() + [Edit("transport-mmio.tex", Labelled(MMIO_LEGACY),
                                    "See \\ref{sec:Nowhere At All}.\n\n", "transport-mmio", "before")]
    out = tmp_path / "out"
    with pytest.raises(SeriesError) as exc:
        write_series(mini_repo, edits, out, swiotlb_options(), build=True)
    msg = str(exc.value)
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


@pytest.mark.slow
def test_patched_upstream_tree_builds(upstream_copy, tmp_path):
    out = tmp_path / "out"
    write_series(upstream_copy, swiotlb_edits(), out, swiotlb_options(), build=True)
    assert (out / "virtio-v1.4-cs01.pdf").is_file()
