"""LaTeX emission follows the upstream house style (facts from v1.4-cs01)."""
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from specc.emit.latex import (RefIndex, block_heading, conformance_item, constant_define,
                              feature_item, module_latex, prose, section_heading, wrap)
from specc.parse import parse_source

MODULE = '''
module demo {
  kind proposal
  title "Demo"
}
feature VIRTIO_F_DEMO_THING {
  bit 45
  scope device-independent
  """Costs 50% of $5 & uses slot #3 of {a} ~ ^x \\path; see @section(Basic Facilities of a Virtio Device / Feature Bits)."""
}
struct demo_cap {
  le32 offset_hi "High bits."
}
section "Demo Area" in "Basic Facilities of a Virtio Device" {
  """The field @field(demo_cap.offset_hi) and the "quoted" name."""
  section "Details" {
    "Nested."
    driver requirements {
      req demo.drv.one {
        when "@feature(VIRTIO_F_DEMO_THING) has been negotiated"
        "The driver MUST do the thing."
        untestable "nothing to observe"
      }
    }
  }
}
'''


@pytest.fixture(scope="module")
def demo():
    module, diags = parse_source(MODULE, "demo.vspec")
    assert module is not None and not [d for d in diags if d.is_error], diags
    return module


def test_feature_item_is_name_and_bit_in_the_item_label(demo) -> None:
    text = feature_item(demo.features[0], RefIndex.of(demo))
    # \item[VIRTIO_F_NAME(N)], underscores bare (the underscore package is loaded)
    assert text.startswith("  \\item[VIRTIO_F_DEMO_THING(45)] Costs")


def test_prose_specials_are_escaped_and_references_upstream_style(demo) -> None:
    text = " ".join(feature_item(demo.features[0], RefIndex.of(demo)).split())
    assert r"50\% of \$5 \& uses slot \#3 of \{a\} \textasciitilde{} \textasciicircum{}x \textbackslash{}path" in text
    label = "sec:Basic Facilities of a Virtio Device / Feature Bits"
    assert f"\\ref{{{label}}}~\\nameref{{{label}}}." in text


def test_sections_use_the_command_of_their_depth_and_a_title_path_label(demo) -> None:
    outer = demo.sections[0]
    inner = outer.items[1]
    # Chapter / Section: \section; one level deeper: \subsection.
    assert section_heading(outer) == ("\\section{Demo Area}\\label{sec:Basic Facilities of a "
                                      "Virtio Device / Demo Area}\n")
    assert section_heading(inner).startswith("\\subsection{Details}\\label{sec:Basic Facilities "
                                             "of a Virtio Device / Demo Area / Details}")


def test_normative_block_is_one_level_below_its_section(demo) -> None:
    block = demo.sections[0].items[1].items[1]
    assert block_heading(block, 3) == ("\\drivernormative{\\subsubsection}{Details}{Basic "
                                       "Facilities of a Virtio Device / Demo Area / Details}\n")


def test_field_references_and_tex_quotes(demo) -> None:
    para = demo.sections[0].items[0].prose
    assert prose(para, RefIndex.of(demo)) == "The field \\field{offset_hi} and the ``quoted'' name."


def test_condition_leads_the_statement(demo) -> None:
    text = " ".join(module_latex(demo).split())
    assert "If VIRTIO_F_DEMO_THING has been negotiated, the driver MUST do the thing." in text


def test_conformance_item_and_define() -> None:
    from specc.model import ConformanceEntry, Constant
    e = ConformanceEntry("device", "A / B", "Conformance / Device Conformance")
    assert conformance_item(e) == "\\item \\ref{devicenormative:A / B}\n"
    c = Constant("VIRTIO_PCI_CAP_SWIOTLB_CFG", 10, "pci-cfg-type", ())
    # upstream aligns the values of the cfg_type table in one column (col 42)
    assert constant_define(c) == "#define VIRTIO_PCI_CAP_SWIOTLB_CFG       10\n"
    assert constant_define(c).index("10") == len("#define VIRTIO_PCI_CAP_SHARED_MEMORY_CFG ")


def test_wrap_keeps_labels_whole_and_lines_short() -> None:
    ref = "\\ref{sec:A very long / title path / that has spaces}"
    text = ("word " * 20) + ref + " tail"
    lines = wrap(text).splitlines()
    assert len(lines) > 1
    # no line break inside the braces of the label, every other word kept
    assert all(ln.count("{") == ln.count("}") for ln in lines)
    assert any(ref in ln for ln in lines)
    assert " ".join(lines).split() == text.split()
    assert all(len(ln) <= 72 for ln in lines)


def test_swiotlb_feature_lands_as_bit_44(swiotlb) -> None:
    assert "\\item[VIRTIO_F_SWIOTLB(44)]" in module_latex(swiotlb)


@pytest.mark.xelatex
def test_escaped_prose_compiles_with_xelatex(tmp_path: Path, demo) -> None:
    if shutil.which("xelatex") is None:
        pytest.skip("xelatex is not installed (texlive-xetex)")
    body = feature_item(demo.features[0], RefIndex.of(demo))
    doc = ("\\documentclass{article}\\usepackage{underscore}\\usepackage{hyperref}"
           "\\begin{document}\\section{Feature Bits}\\label{sec:Basic Facilities of a Virtio "
           "Device / Feature Bits}\\begin{description}\n" + body + "\\end{description}\n"
           "\\end{document}\n")
    (tmp_path / "t.tex").write_text(doc)
    for _ in range(2):   # the second run resolves \ref and \nameref
        proc = subprocess.run(["xelatex", "-interaction=nonstopmode", "-halt-on-error", "t.tex"],
                              cwd=tmp_path, capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, proc.stdout[-2000:]
    log = (tmp_path / "t.log").read_text(errors="replace")
    assert "LaTeX Warning" not in log
    assert not re.search(r"^! ", log, re.M)
