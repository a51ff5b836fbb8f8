"""Semantic checks: collisions, ranges, references, keywords, layouts, placement."""
from __future__ import annotations

from .conftest import SPEC
from specc.checks import check_modules
from specc.load import load


def errors_of(paths):
    loaded = load(paths)
    diags = loaded.diagnostics + check_modules(loaded.modules)
    return [d for d in diags if d.is_error]


HEADER = 'module {name} {{\n  kind baseline\n  base "virtio-v1.4-cs01"\n}}\n'


def feature(name, bit, scope="device-independent"):
    return f'feature {name} {{\n  bit {bit}\n  scope {scope}\n  "Some feature."\n}}\n'


def test_shipped_spec_is_clean():
    loaded = load(sorted(str(p) for p in SPEC.glob("*.vspec")))
    assert loaded.diagnostics == []
    assert check_modules(loaded.modules) == []


def test_swiotlb_at_bit_27_as_in_the_rfc_collides_with_any_layout(write):
    # The RFC numbered VIRTIO_F_SWIOTLB 27; v1.4-cs01 lists bit 27 as the legacy
    # VIRTIO_F_ANY_LAYOUT, which transitional devices must still offer.
    text = (SPEC / "swiotlb.vspec").read_text(encoding="utf-8").replace("  bit 44\n", "  bit 27\n", 1)
    path = write("swiotlb.vspec", text)
    errs = errors_of([path])
    collision = [d for d in errs if "collides" in d.message]
    assert len(collision) == 1
    d = collision[0]
    assert "VIRTIO_F_ANY_LAYOUT" in d.message and "legacy" in d.message
    assert d.pos.line == text.splitlines().index("  bit 27") + 1 and d.pos.col == 7
    assert "44" in d.hint


def test_two_modules_claiming_one_bit_clash(write):
    a = write("a.vspec", HEADER.format(name="a") + feature("VIRTIO_F_ALPHA", 45))
    b = write("b.vspec", HEADER.format(name="b") + feature("VIRTIO_F_BETA", 45))
    errs = errors_of([a, b])
    assert len(errs) == 1
    assert errs[0].pos.file == b
    assert "VIRTIO_F_ALPHA" in errs[0].message and "module 'a'" in errs[0].message


def test_device_type_bits_clash_only_within_one_device_type(write):
    # blk assigns bits up to 17 and entropy none, so 20 is free in both
    a = write("a.vspec", HEADER.format(name="a") + feature("VIRTIO_BLK_F_NEW", 20, "blk"))
    b = write("b.vspec", HEADER.format(name="b") + feature("VIRTIO_RNG_F_NEW", 20, "rng"))
    c = write("c.vspec", HEADER.format(name="c") + feature("VIRTIO_BLK_F_OTHER", 20, "block"))
    assert errors_of([a, b]) == []
    errs = errors_of([a, c])
    assert len(errs) == 1 and "VIRTIO_BLK_F_NEW" in errs[0].message


def test_swiotlb_at_44_in_two_modules_is_a_duplicate_feature(write):
    text = (SPEC / "swiotlb.vspec").read_text(encoding="utf-8")
    a = write("a.vspec", text)
    b = write("b.vspec", text.replace("module swiotlb", "module swiotlb2"))
    msgs = [d.message for d in errors_of([a, b])]
    assert any("feature VIRTIO_F_SWIOTLB is declared twice" in m for m in msgs)
    assert any("duplicate requirement id 'swiotlb.drv.buffers-inside'" in m for m in msgs)


def test_allocation_ranges():
    from specc import known
    # the v1.4-cs01 allocation list: 24-40 and 43 for extensions, 44-49 and 128+ future
    for bit in (24, 40, 43, 44, 49, 128, 500):
        assert known.in_ranges(bit, known.DEVICE_INDEPENDENT_RANGES), bit
    for bit in (0, 23, 41, 42, 50, 127):
        assert not known.in_ranges(bit, known.DEVICE_INDEPENDENT_RANGES), bit
        assert known.in_ranges(bit, known.DEVICE_TYPE_RANGES), bit


def test_independent_errors_are_all_reported_in_one_run(write):
    text = (HEADER.format(name="m") + feature("VIRTIO_F_X", 33)
            + 'struct s size 8 {\n  u8 a\n  le32 b\n}\n'
            + 'section "N" in "Basic Facilities of a Virtio Device" {\n  "The driver MUST obey."\n}\n')
    errs = errors_of([write("m.vspec", text)])
    kinds = sorted({("collides" in d.message, "aligned" in d.message, "outside a normative" in d.message,
                     "declared as 8" in d.message) for d in errs})
    assert len(errs) == 4 and len(kinds) == 4


def test_reference_through_an_alias_resolves(write):
    text = (HEADER.format(name="m")
            + 'device requirements "Basic Facilities of a Virtio Device / Feature Bits" {\n'
              '  req m.new-name {\n    "The device MUST do it."\n    alias m.old-name\n'
              '    untestable "u"\n  }\n}\n'
            + 'section "N" in "Basic Facilities of a Virtio Device" {\n  "See @req(m.old-name)."\n}\n')
    assert errors_of([write("m.vspec", text)]) == []


def test_lowercase_slip_inside_statement_is_a_warning(write):
    text = (HEADER.format(name="m")
            + 'device requirements "Basic Facilities of a Virtio Device / Feature Bits" {\n'
              '  req m.a { "The device MUST do it and must not stop." untestable "u" }\n}\n')
    loaded = load([write("m.vspec", text)])
    diags = check_modules(loaded.modules)
    assert [(d.severity, d.message) for d in diags] == \
        [("warning", "lower-case 'must not' in normative statement m.a")]


def test_proposal_and_baseline_may_both_touch_reserved_feature_bits_block():
    # swiotlb extends "Reserved Feature Bits"; feature_negotiation restates it
    loaded = load([str(SPEC / "swiotlb.vspec"), str(SPEC / "feature_negotiation.vspec")])
    assert [d for d in check_modules(loaded.modules) if d.is_error] == []


def test_every_offender_is_named_for_placement(write):
    text = ('module p {\n  kind proposal\n  base "virtio-v1.4-cs01"\n}\n'
            'section "A" in "Basic Facilities of a Virtio Device" {\n  "a"\n'
            '  driver requirements { req p.a { "The driver MUST a." untestable "u" } }\n'
            '  device requirements { req p.b { "The device MUST b." untestable "u" } }\n}\n'
            'placement {\n  conformance driver "Basic Facilities of a Virtio Device / A" -> '
            '"Conformance / Driver Conformance"\n}\n')
    msgs = [d.message for d in errors_of([write("p.vspec", text)])]
    assert "section 'Basic Facilities of a Virtio Device / A' is not placed in the upstream tree" in msgs
    assert sum("is placed 0 times" in m for m in msgs) == 2          # both blocks named
    assert any("devicenormative:Basic Facilities of a Virtio Device / A' is listed in 0" in m for m in msgs)
    assert not any("drivernormative:Basic Facilities of a Virtio Device / A' is listed" in m for m in msgs)


def test_device_type_bit_collides_with_upstream_bit_of_that_type(write):
    # virtio-net assigns bit 22 to VIRTIO_NET_F_MQ
    errs = errors_of([write("n.vspec", HEADER.format(name="n") + feature("VIRTIO_NET_F_NEW", 22, "net"))])
    assert [e.message for e in errs] == [
        "feature bit 22 of VIRTIO_NET_F_NEW collides with VIRTIO_NET_F_MQ, assigned to net devices "
        "in virtio-v1.4-cs01"]


def test_negotiating_a_feature_not_required_offered_is_a_warning(write):
    text = (HEADER.format(name="m")
            + 'device requirements "Basic Facilities of a Virtio Device / Feature Bits" {\n'
              '  req m.a {\n    "The device MUST do it."\n'
              '    check c {\n      result valid\n      negotiate VIRTIO_F_RING_PACKED\n'
              '      expect features_ok accepted\n    }\n'
              '    check d {\n      result valid\n      given offered VIRTIO_F_RING_PACKED\n'
              '      negotiate VIRTIO_F_RING_PACKED\n      expect features_ok accepted\n    }\n  }\n}\n')
    loaded = load([write("m.vspec", text)])
    diags = check_modules(loaded.modules)
    assert [(d.severity, d.pos.line) for d in diags] == [("warning", 10)]   # the negotiate line of c
    assert "given offered VIRTIO_F_RING_PACKED" in diags[0].message


def test_transport_block_listed_in_a_general_clause_is_a_warning(write):
    text = (SPEC / "swiotlb.vspec").read_text(encoding="utf-8").replace(
        '-> "Conformance / Device Conformance / MMIO Device Conformance"',
        '-> "Conformance / Device Conformance / PCI Device Conformance"')
    loaded = load([write("s.vspec", text)])
    diags = check_modules(loaded.modules)
    assert [d.severity for d in diags] == ["warning"]
    assert "MMIO Device Discovery / Bounce Buffer Region' is in a MMIO transport section but listed in " \
           "clause 'Conformance / Device Conformance / PCI Device Conformance'" in diags[0].message
