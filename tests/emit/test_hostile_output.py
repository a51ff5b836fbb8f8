"""Hostile text in a module cannot escape the output context it is written into
(issue 19): LaTeX listings, RST/HTML links."""
from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given, strategies as st

from specc.emit.escape import listing_comment
from specc.emit.latex import LatexError, constant_define

from .conftest import SWIOTLB, specc

INJECTION = r"x \end{lstlisting}\input{/etc/passwd}\immediate\write18{id} \begin{lstlisting}"


def test_listing_comment_that_would_end_the_listing_is_an_error_in_check(tmp_path):
    # item 1: constant prose lands as a C comment inside an upstream lstlisting
    text = SWIOTLB.read_text(encoding="utf-8").replace(
        '"Software IOTLB bounce buffer region"', f'"{INJECTION}"')
    src = tmp_path / "inj.vspec"
    src.write_text(text, encoding="utf-8")
    proc = specc("check", "--no-registry", str(src))
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "VIRTIO_PCI_CAP_SWIOTLB_CFG holds \\end{lstlisting}" in proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.mark.parametrize("end", [r"\end{lstlisting}", r"\end {lstlisting}", r"\end{ lstlisting }"])
def test_the_listing_writer_refuses_what_would_end_the_listing(swiotlb, end):
    c = swiotlb.constants[0]
    prose = dataclasses.replace(c.prose[0], pieces=(type(c.prose[0].pieces[0])(f"a {end} b"),))
    with pytest.raises(LatexError, match="cannot go into a listing"):
        constant_define(dataclasses.replace(c, prose=(prose,)))


@given(st.text(alphabet="\\end{lstig} */x\n", max_size=60))
def test_a_listing_comment_never_ends_the_listing_or_the_comment(text):
    try:
        out = listing_comment(text)
    except ValueError:
        return
    body = out[3:-3]
    assert "*/" not in body and "\n" not in body
    assert "\\end{lstlisting}" not in "".join(out.split())
