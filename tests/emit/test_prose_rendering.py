"""Prose a reviewer expects: conditions as one English sentence, the keyword
written once, requires rendered, bibliography entries added and cited."""
from __future__ import annotations

from pathlib import Path

import pytest

from specc.checks import check_modules
from specc.emit.latex import RefIndex, feature_item, module_latex, reference_row, statement_latex
from specc.emit.rst import module_rst
from specc.load import load
from specc.model import Module

HEADER = 'module m {\n  kind proposal\n  title "t"\n  base "virtio-v1.4-cs01"\n}\n'


def _load(tmp_path: Path, body: str) -> tuple[Module, list]:
    p = tmp_path / "m.vspec"
    p.write_text(HEADER + body, encoding="utf-8")
    loaded = load([str(p)])
    assert not [d for d in loaded.diagnostics if d.is_error], loaded.diagnostics
    m = loaded.modules[0]
    return m, check_modules([m])


def _statement(tmp_path: Path, when: str, text: str) -> str:
    m, _ = _load(tmp_path, f'device requirements "Reserved Feature Bits" {{\n'
                           f'  req m.a {{\n    when "{when}"\n    """{text}"""\n'
                           f'    untestable "u"\n  }}\n}}\n')
    st = m.blocks[0].statements[0]
    return " ".join(statement_latex(st, RefIndex.of(m)).split())


@pytest.mark.parametrize("when, text, expected", [
    ("@feature(VIRTIO_F_VERSION_1) has been negotiated", "The device MUST do it.",
     "If VIRTIO_F_VERSION_1 has been negotiated, the device MUST do it."),
    # a text that starts with its own "If" joins the condition with "and"
    ("@feature(VIRTIO_F_VERSION_1) has been negotiated",
     "If the driver writes 1, the device MUST do it.",
     "If VIRTIO_F_VERSION_1 has been negotiated and the driver writes 1, the device MUST do it."),
    # a condition written with its own "if" loses it
    ("if @feature(VIRTIO_F_VERSION_1) has been negotiated", "The device MUST do it.",
     "If VIRTIO_F_VERSION_1 has been negotiated, the device MUST do it."),
    ("when the queue is enabled", "When the driver kicks, the device MUST look.",
     "If the queue is enabled and the driver kicks, the device MUST look."),
])
def test_a_condition_and_its_statement_read_as_one_sentence(tmp_path, when, text, expected) -> None:
    got = _statement(tmp_path, when, text)
    assert got == expected
    assert ", if " not in got.lower() and "if if" not in got.lower()


def test_the_docs_render_the_same_sentence(tmp_path) -> None:
    m, _ = _load(tmp_path, 'device requirements "Reserved Feature Bits" {\n  req m.a {\n'
                           '    when "the queue is enabled"\n'
                           '    """If the driver kicks, the device MUST look."""\n'
                           '    untestable "u"\n  }\n}\n')
    page = module_rst(m)
    assert "If the queue is enabled and the driver kicks, the device :rfc2119:`MUST` look." in page
    assert "*When*" not in page


def test_the_keyword_written_twice_is_flagged(tmp_path) -> None:
    _, diags = _load(tmp_path, 'device requirements "Reserved Feature Bits" {\n'
                               '  req m.a MUST { "The device MUST do it." untestable "u" }\n'
                               '  req m.b MUST { "The device MUST do it, or SHOULD log." '
                               'untestable "u" }\n'
                               '  req m.c { "The device MUST do it." untestable "u" }\n}\n')
    twice = [d for d in diags if "written twice" in d.message]
    # m.b declares which of two keywords it is: that is not a doubling
    assert [(d.severity, d.pos.line) for d in twice] == [("warning", 7)]
    assert twice[0].hint.startswith("the text carries the keyword: write `req m.a {`")


def test_requires_and_excludes_are_rendered(tmp_path) -> None:
    m, _ = _load(tmp_path, 'feature VIRTIO_F_X {\n  bit 45\n  scope device-independent\n'
                           '  requires VIRTIO_F_VERSION_1, VIRTIO_F_RING_PACKED\n'
                           '  excludes VIRTIO_F_IN_ORDER\n  "The X feature."\n}\n')
    item = " ".join(feature_item(m.features[0], RefIndex.of(m)).split())
    assert "VIRTIO_F_X requires VIRTIO_F_VERSION_1 and VIRTIO_F_RING_PACKED." in item
    assert "VIRTIO_F_X cannot be negotiated together with VIRTIO_F_IN_ORDER." in item
    page = module_rst(m)
    assert "VIRTIO_F_VERSION_1, VIRTIO_F_RING_PACKED" in page and "VIRTIO_F_IN_ORDER" in page


REFERENCE = '''reference RFC8439 {
  normative
  url "https://www.rfc-editor.org/rfc/rfc8439"
  """Y. Nir and A. Langley, "ChaCha20 and Poly1305 for IETF Protocols", RFC 8439."""
}

section "Ciphers" in "Basic Facilities of a Virtio Device" {
  """The ciphers are those of @cite(RFC8439); keywords follow @cite(RFC2119)."""
}

placement {
  section "Basic Facilities of a Virtio Device / Ciphers" -> "content.tex" before text "\\input{admin.tex}"
}
'''


def test_a_bibliography_entry_is_a_reference_table_row_and_cited(tmp_path) -> None:
    m, diags = _load(tmp_path, REFERENCE)
    assert not [d for d in diags if d.is_error]
    row = reference_row(m.references[0], RefIndex.of(m))
    assert row.startswith("\t\\phantomsection\\label{intro:rfc8439}\\textbf{[RFC8439]} &\n")
    assert "``ChaCha20 and Poly1305 for IETF Protocols''" in row
    assert row.rstrip().endswith("\\newline\\url{https://www.rfc-editor.org/rfc/rfc8439}\\\\")
    tex = module_latex(m)
    assert "\\hyperref[intro:rfc8439]{[RFC8439]}" in tex
    assert "\\hyperref[intro:rfc2119]{[RFC2119]}" in tex        # an upstream entry
    page = module_rst(m)
    assert "`[RFC8439] <reference RFC8439_>`__" in page
    assert ".. _`reference RFC8439`:" in page and "(normative)" in page


def test_citing_an_unknown_entry_is_an_error(tmp_path) -> None:
    p = tmp_path / "m.vspec"
    p.write_text(HEADER + REFERENCE.replace("@cite(RFC2119)", "@cite(RFC9999)"))
    loaded = load([str(p)])
    diags = check_modules(loaded.modules)
    errors = [d for d in diags if d.is_error]
    assert [d.message for d in errors] == [
        "unresolved citation RFC9999: no reference entry in the modules or virtio-v1.4-cs01"]
