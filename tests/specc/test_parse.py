"""The parser builds the model the emitters rely on."""
from __future__ import annotations

import pytest

from .conftest import SPEC
from specc.diagnostics import SpecError
from specc.model import Note, Paragraph, Ref, Section, StructRef, Text
from specc.parse import _label, fingerprint, parse_file, parse_source


@pytest.fixture(scope="module")
def swiotlb():
    return parse_file(SPEC / "swiotlb.vspec")


def test_header(swiotlb):
    assert (swiotlb.name, swiotlb.kind, swiotlb.base, swiotlb.subject) == \
        ("swiotlb", "proposal", "virtio-v1.4-cs01", "content")


def test_feature_bit_44_device_independent_not_on_ccw(swiotlb):
    (f,) = swiotlb.features
    assert (f.name, f.bit, f.scope, f.unsupported) == \
        ("VIRTIO_F_SWIOTLB", 44, "device-independent", ("ccw",))


def test_pci_cap64_is_reused_not_redefined(swiotlb):
    # the layout stays upstream; the module says what the capability puts in its fields
    assert swiotlb.struct("virtio_pci_cap64") is None
    r = swiotlb.reused_struct("virtio_pci_cap64")
    assert [f.name for f in r.fills] == ["cfg_type", "bar", "id", "offset", "offset_hi",
                                         "length", "length_hi"]
    assert r.fill("cfg_type").prose.plain() == "VIRTIO_PCI_CAP_SWIOTLB_CFG."


def test_cfg_type_constant_is_next_free_value(swiotlb):
    (c,) = swiotlb.constants
    assert (c.name, c.value, c.group) == ("VIRTIO_PCI_CAP_SWIOTLB_CFG", 10, "pci-cfg-type")


def test_section_labels_are_title_paths(swiotlb):
    labels = [s.label for s in swiotlb.all_sections()]
    assert "sec:Basic Facilities of a Virtio Device / Bounce Buffer Memory" in labels
    assert ("sec:Virtio Transport Options / Virtio Over PCI Bus / PCI Device Layout / "
            "Software IOTLB bounce buffer capability") in labels


def test_blocks_take_their_section_path_and_conformance_clause(swiotlb):
    blocks = {b.label: b for b in swiotlb.all_blocks()}
    b = blocks["devicenormative:Basic Facilities of a Virtio Device / Bounce Buffer Memory"]
    assert b.conformance == ("Conformance / Device Conformance",)
    assert not b.standalone
    ext = blocks["drivernormative:Reserved Feature Bits"]
    assert ext.standalone and ext.conformance == ()


def test_statement_keyword_condition_and_checks(swiotlb):
    st = next(s for s in swiotlb.all_statements() if s.id == "swiotlb.dev.no-access-outside")
    assert st.keyword == "MUST NOT" and st.role == "device"
    assert st.condition.refs()[0].target == "VIRTIO_F_SWIOTLB"
    names = [c.name for c in st.checks]
    assert names == ["outside-readable", "outside-writable", "straddles-end", "length-wraps",
                     "rings-outside", "rings-straddle"]
    straddle = st.checks[2]
    assert straddle.result == "invalid"
    assert [s.verb for s in straddle.preconditions] == ["device", "offered"]
    submit = next(s for s in straddle.steps if s.verb == "submit_descriptor")
    assert submit.arg("addr") == "region.end-256" and submit.arg("flags") == "write"
    assert [s.verb for s in straddle.expectations] == ["memory_outside_region"]
    assert straddle.id == "swiotlb.dev.no-access-outside/straddles-end"


def test_prose_keeps_braces_backslashes_and_latex_specials():
    src = ('module m { kind baseline }\n'
           'section "S" in "Basic Facilities of a Virtio Device" {\n'
           '  """Use {x} and \\field{y}, 50% & $z_1$ # not a comment; mail a@b.c or @@home."""\n'
           '}\n')
    m, diags = parse_source(src, "t.vspec")
    assert diags == []
    (para,) = m.sections[0].items
    assert isinstance(para, Paragraph)
    assert para.prose.pieces == (Text("Use {x} and \\field{y}, 50% & $z_1$ # not a comment; "
                                      "mail a@b.c or @home."),)


@pytest.mark.parametrize("body, text", [
    ('It is called "bounce"', 'It is called "bounce"'),
    ('Two quotes at the end ""', 'Two quotes at the end ""'),
    ('"Quoted" first', '"Quoted" first'),
])
def test_prose_may_begin_or_end_with_quotes(body, text):
    # only three quotes in a row close a block, so one or two quotes just
    # before the closing delimiter belong to the prose
    src = ('module m { kind baseline }\n'
           'section "S" in "Basic Facilities of a Virtio Device" {\n'
           f'  """{body}"""\n'
           '}\n')
    m, diags = parse_source(src, "t.vspec")
    assert diags == []
    (para,) = m.sections[0].items
    assert para.prose.pieces == (Text(text),)


def test_inline_references_have_positions():
    src = ('module m { kind baseline }\n'
           'section "S" in "Basic Facilities of a Virtio Device" {\n'
           '  """See\n    @section(Basic Facilities of a Virtio Device / Feature Bits) and\n'
           '    @field(device status)."""\n'
           '}\n')
    m, _ = parse_source(src, "t.vspec")
    pieces = m.sections[0].items[0].prose.pieces
    refs = [p for p in pieces if isinstance(p, Ref)]
    assert [(r.kind, r.target, r.pos.line, r.pos.col) for r in refs] == [
        ("section", "Basic Facilities of a Virtio Device / Feature Bits", 4, 5),
        ("field", "device status", 5, 5)]
    assert pieces[0] == Text("See ") and pieces[2] == Text(" and ")


def test_blank_line_splits_paragraphs_and_notes_and_show():
    src = ('module m { kind baseline }\nstruct s { le32 a }\n'
           'section "S" in "Basic Facilities of a Virtio Device" {\n'
           '  """One.\n\n  Two."""\n  note "N."\n  show s\n  section "Sub" { "Inner." }\n}\n')
    m, _ = parse_source(src, "t.vspec")
    items = m.sections[0].items
    assert [type(i) for i in items] == [Paragraph, Paragraph, Note, StructRef, Section]
    assert items[4].path == ("Basic Facilities of a Virtio Device", "S", "Sub")


def test_fingerprint_ignores_layout_but_not_words():
    a = parse_source('module m { kind baseline }\ndevice requirements "X" {\n'
                     '  req a MUST { """The device MUST   do\n   it.""" untestable "u" } }\n', "a")[0]
    b = parse_source('module m { kind baseline }\ndevice requirements "X" {\n'
                     '  req a MUST { "The device MUST do it." untestable "u" } }\n', "b")[0]
    c = parse_source('module m { kind baseline }\ndevice requirements "X" {\n'
                     '  req a MUST { "The device MUST do that." untestable "u" } }\n', "c")[0]
    fa, fb, fc = (next(x.all_statements()).fingerprint for x in (a, b, c))
    assert fa == fb != fc
    assert len(fa) == 12


def test_keyword_inferred_from_text_when_not_declared():
    m, _ = parse_source('module m { kind baseline }\ndriver requirements "X" {\n'
                        '  req a { "The driver SHOULD NOT do it." untestable "u" } }\n', "t")
    st = next(m.all_statements())
    assert st.keyword == "SHOULD NOT" and not st.keyword_declared


def test_parse_file_raises_spec_error_with_diagnostics(tmp_path):
    p = tmp_path / "bad.vspec"
    p.write_text("module {", encoding="utf-8")
    with pytest.raises(SpecError) as info:
        parse_file(p)
    assert info.value.diagnostics[0].pos.line == 1


def test_label_paths_keep_a_slash_inside_a_title():
    spaced = "devicenormative:Virtio Transport Options / Virtio over channel I/O / Basic Concepts"
    assert _label(spaced) == spaced
    assert _label("sec:Basic Facilities of a Virtio Device/Feature Bits") == \
        "sec:Basic Facilities of a Virtio Device / Feature Bits"
