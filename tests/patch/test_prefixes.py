"""Every prefix of a series defines what it refers to: held-back paragraphs
and the check behind it (specc.patch.prefixes), on plain Edits."""
from __future__ import annotations

import pytest

from specc.patch import Edit, FeatureSlot, Line
from specc.patch.prefixes import (ArrangeError, arrange, check, labels_defined,
                                  labels_referenced, paragraphs, prefix)

UP = {"sec:Upstream"}
NAMES = ["content", "transport-pci", "transport-mmio"]
AT = Line("\\input{admin.tex}")


def sec(label: str, body: str = "Text.") -> str:
    return f"\\section{{T}}\\label{{{label}}}\n\n{body}\n"


def test_labels_and_references_are_read_with_spaces_normalised():
    text = ("\\label{sec:A /\n B}\\drivernormative{\\section}{T}{X / Y}\n"
            "\\ref{sec:A / B}~\\nameref{sec:Q} \\hyperref[sec:R]{r} \\pageref{sec:A  /  B}")
    assert labels_defined(text) == ["sec:A / B", "drivernormative:X / Y"]
    assert labels_referenced(text) == ["sec:A / B", "sec:Q", "sec:R", "sec:A / B"]


def test_paragraphs_join_back_to_the_text():
    text = "\nA a\nb\n\nB\n\n\nC\n"
    parts = paragraphs(text)
    assert parts == ["\nA a\nb\n\n", "B\n\n\n", "C\n"] and "".join(parts) == text


def test_forward_reference_is_held_back_to_the_commit_that_defines_the_label():
    content = Edit("content.tex", AT,
                   sec("sec:Feat", "First.\n\nSee \\ref{sec:Mmio} and \\ref{sec:Pci}.\n\nLast."),
                   "content", "before")
    pci = Edit("transport-pci.tex", AT, sec("sec:Pci", "See \\ref{sec:Feat}."), "transport-pci")
    mmio = Edit("transport-mmio.tex", AT, sec("sec:Mmio"), "transport-mmio")
    placed, held = arrange([[content], [pci], [mmio]], UP, NAMES)
    # the referring paragraph goes to the latest commit it needs (mmio), in place
    assert [(p.commit, p.edit.text.strip()[:12]) for p in placed if p.edit.file == "content.tex"] \
        == [(0, "\\section{T}\\"), (2, "See \\ref{sec"), (0, "Last.")]
    assert [(h.origin, h.commit, h.label) for h in held] == [(0, 2, "sec:Mmio")]
    check(placed, UP, NAMES)
    # every prefix keeps the original order; the whole series is the original text
    assert "".join(e.text for e in prefix(placed, 2) if e.file == "content.tex") == content.text
    assert "See \\ref{sec:Mmio}" not in "".join(e.text for e in prefix(placed, 1))


def test_check_finds_what_arrange_did_not_fix():
    from specc.patch.prefixes import Placed
    a = Edit("content.tex", AT, "See \\ref{sec:Pci}.\n", "content")
    b = Edit("transport-pci.tex", AT, sec("sec:Pci"), "transport-pci")
    with pytest.raises(ArrangeError, match=r"only the later commit 'transport-pci' adds"):
        check([Placed(a, 0), Placed(b, 1)], UP, NAMES)
    with pytest.raises(ArrangeError, match=r"neither the tree nor the series defines"):
        check([Placed(Edit("content.tex", AT, "\\ref{sec:Nowhere}\n", "content"), 0)], UP, NAMES)


@pytest.mark.parametrize("para", [
    "\\begin{itemize}\n\\item see \\ref{sec:Pci}\n",           # opens an environment
    "\\paragraph{X}\\label{par:X} see \\ref{sec:Pci}\n",       # defines a label
])
def test_a_paragraph_that_cannot_move_is_an_error(para):
    a = Edit("content.tex", AT, para, "content")
    b = Edit("transport-pci.tex", AT, sec("sec:Pci"), "transport-pci")
    with pytest.raises(ArrangeError, match="cannot be held back"):
        arrange([[a], [b]], UP, NAMES)


def test_replacements_and_upstream_labels_stay_put():
    a = Edit("content.tex", FeatureSlot(44), "\\ref{sec:Upstream}\n", "content")
    r = Edit("content.tex", AT, "x", "content", "replace")
    placed, held = arrange([[a, r]], UP, NAMES)
    assert [p.commit for p in placed] == [0, 0] and not held
