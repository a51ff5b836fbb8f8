"""Fuzz target for the spec-tree surface (slow suite): hostile LaTeX added to
the clean audit fixture. Reading the tree ends in a tree or a one-line
TreeError; the audit ends in findings; nothing outside the tree is read."""
from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from specc.audit import audit
from specc.upstream.tree import TreeError, load_tree

pytestmark = pytest.mark.slow

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "audit-tree-clean"
SECRET = "TOPSECRET"

PIECES = ["\\section{", "\\subsection{A}", "\\label{sec:", "\\label{", "}", "{", "[", "]",
          "\\item", "\\item[", "\\begin{itemize}", "\\end{itemize}", "\\begin{description}",
          "\\end{description}", "\\begin{lstlisting}", "\\end{lstlisting}", "%", "\\%", "\\\\",
          "\\ref{", "\\nameref{sec:A}", "\\hyperref[", "\\drivernormative{\\subsection}{T}{P}",
          "\\devicenormative{", "\\conformance{\\section}{C}", "MUST", "MUST NOT", "``MAY''",
          "\\input{", "\\input{../secret}", "\\input{/tmp/secret}", "\\include{x}",
          "\\item[VIRTIO_F_X(", "44 to 49, and 128 and above", "\n", "\n\n", " ", "x", "é",
          "\\chapter{Z}", "\\newcommand{\\x}[1]{\\input{#1}}", "\\begin{comment}"]
SNIPPET = st.lists(st.sampled_from(PIECES), max_size=40).map("".join)


@settings(max_examples=200, deadline=None, suppress_health_check=list(HealthCheck))
@given(content=SNIPPET, main=SNIPPET)
def test_hostile_latex_gives_a_tree_and_findings_or_one_line_error(content, main):
    with tempfile.TemporaryDirectory(prefix="fz-tree-") as d:
        (Path(d) / "secret.tex").write_text(SECRET + "\n", encoding="utf-8")
        (Path(d) / "secret").write_text(SECRET + "\n", encoding="utf-8")
        root = Path(d) / "tree"
        shutil.copytree(FIXTURE, root)
        with open(root / "content.tex", "a", encoding="utf-8") as f:
            f.write("\n" + content + "\n")
        m = root / "main.tex"
        m.write_text(m.read_text().replace("\\input{device.tex}", main + "\n\\input{device.tex}"),
                     encoding="utf-8")
        try:
            tree = load_tree(root)
        except TreeError as exc:
            assert "\n" not in str(exc) and SECRET not in str(exc)
            return
        assert not any(SECRET in s.text for s in tree.sources.values())
        findings = audit(tree)
        assert all("\n" not in f.message for f in findings)
        assert not any(SECRET in f.message for f in findings)
