"""The audit of a real v1.4-cs01 checkout (VIRTIO_SPEC_TREE), against facts
checked by hand in the tree (docs/audit.md lists each finding and how it was
checked). Skipped when VIRTIO_SPEC_TREE is not set."""
from __future__ import annotations

from collections import Counter

import pytest

from specc.audit import audit
from specc.upstream.tree import load_tree
from tests.spec_trees import upstream_checkout


@pytest.fixture(scope="module")
def tree(request):
    return load_tree(upstream_checkout())


@pytest.fixture(scope="module")
def findings(tree):
    return audit(tree)


def by_code(findings, code):
    return [f for f in findings if f.code == code]


def test_reader_follows_the_build(tree):
    assert tree.files[:5] == ["virtio.tex", "specvars.tex", "commands.tex", "commands-pdf.tex",
                              "listings.tex"]
    for f in ("content.tex", "split-ring.tex", "transport-pci.tex", "conformance.tex",
              "device-types/rtc/device-conformance.tex", "changelog.tex"):
        assert f in tree.files
    assert "newtransport.tex" in tree.files and "virtio-html.tex" not in tree.files
    # written by make-setup-generated.sh at build time
    assert tree.missing_generated == ["setup-generated.tex"]


def test_allocation_list_matches_the_facts(tree):
    alloc = {a.category: [str(r) for r in a.ranges] for a in tree.allocation}
    assert alloc == {"device": ["0 to 23", "41", "42", "50 to 127"],
                     "extensions": ["24 to 40", "43"],
                     "future": ["44 to 49", "128 and above"]}


def test_device_independent_bits_match_the_facts(tree):
    bits = {f.bit: (f.name, f.legacy) for f in tree.features if f.scope == "device-independent"}
    assert bits == {
        24: ("VIRTIO_F_NOTIFY_ON_EMPTY", True), 27: ("VIRTIO_F_ANY_LAYOUT", True),
        28: ("VIRTIO_F_INDIRECT_DESC", False), 29: ("VIRTIO_F_EVENT_IDX", False),
        32: ("VIRTIO_F_VERSION_1", False), 33: ("VIRTIO_F_ACCESS_PLATFORM", False),
        34: ("VIRTIO_F_RING_PACKED", False), 35: ("VIRTIO_F_IN_ORDER", False),
        36: ("VIRTIO_F_ORDER_PLATFORM", False), 37: ("VIRTIO_F_SR_IOV", False),
        38: ("VIRTIO_F_NOTIFICATION_DATA", False), 39: ("VIRTIO_F_NOTIF_CONFIG_DATA", False),
        40: ("VIRTIO_F_RING_RESET", False), 41: ("VIRTIO_F_ADMIN_VQ", False),
        43: ("VIRTIO_F_SUSPEND", False)}
    # network device bits 50 to 70 (68 is one of them, 58 is not used)
    net = {f.bit for f in tree.features if f.scope == "Device Types / Network Device"}
    assert set(range(50, 71)) - {58} <= net


def test_json_report_matches_the_schema(tree, capsys):
    import json
    from importlib import resources

    import jsonschema

    from specc.cli import main
    assert main(["audit", "--spec-tree", str(tree.root), "--format", "json"]) == 1
    doc = json.loads(capsys.readouterr().out)
    schema = json.loads(resources.files("specc").joinpath("schemas/audit.schema.json").read_text())
    jsonschema.validate(doc, schema)
    assert doc["counts"]["normative_blocks"] == 310


def test_no_finding_where_latex_itself_is_happy(findings):
    # the unmodified tree builds with no LaTeX warning: no undefined or duplicate label
    assert by_code(findings, "reference-undefined") == []
    assert by_code(findings, "label-duplicate") == []
    assert by_code(findings, "conformance-item-dangling") == []


def test_feature_findings(findings):
    # content.tex: the allocation list gives 41 to device types, VIRTIO_F_ADMIN_VQ(41) is device-independent
    got = [(f.code, f.name, f.pos.file) for f in findings if "bit" in f.code]
    assert got == [("independent-bit-in-device-range", "VIRTIO_F_ADMIN_VQ", "content.tex")]


def test_blocks_no_clause_lists(findings):
    assert {f.name for f in by_code(findings, "block-unlisted")} == {
        f"{role}normative:{path}"
        for path in ("Basic Facilities of a Virtio Device / Virtqueues / Virtqueue Reset / Virtqueue Re-enable",
                     "General Initialization And Device Operation / Device Suspend",
                     "Basic Facilities of a Virtio Device / Device groups / Group administration commands",
                     "Basic Facilities of a Virtio Device / Administration virtqueues",
                     "Virtio Transport Options / Virtio Over PCI Bus / PCI Device Layout / Vendor data capability",
                     "Device Types / Crypto Device / Device Operation / AKCIPHER Service Operation",
                     "Device Types / Socket Device / Device Operation / Virtqueue Flow Control")
        for role in ("driver", "device")} | {
        "drivernormative:Virtio Transport Options / Virtio Over PCI Bus / PCI-specific Initialization And "
        "Device Operation / Device Initialization / Non-transitional Device With Legacy Driver",
        "drivernormative:Virtio Transport Options / Virtio Over PCI Bus / PCI-specific Initialization And "
        "Device Operation / Available Buffer Notifications"}


def test_case_only_label_typos(findings):
    assert sorted((f.pos.file, f.pos.line) for f in by_code(findings, "label-case-typo")) == [
        ("admin.tex", 562), ("admin.tex", 611),
        ("device-types/crypto/description.tex", 2279), ("device-types/crypto/description.tex", 2351),
        ("device-types/iommu/description.tex", 149), ("device-types/media/description.tex", 163)]


def test_packed_typo_is_pointed_out(findings):
    f = [f for f in by_code(findings, "label-path-mismatch") if "PAcked" in f.name]
    assert len(f) == 1 and (f[0].pos.file, f[0].pos.line) == ("packed-ring.tex", 455)
    assert "'PAcked Virtqueues' differs only in letter case from 'Packed Virtqueues'" in f[0].message


def test_block_without_keyword(findings):
    assert [(f.pos.file, f.pos.line) for f in by_code(findings, "block-without-keyword")] == [
        ("device-types/media/description.tex", 127)]


def test_keywords_outside_blocks(findings, tree):
    kws = by_code(findings, "keyword-outside-block")
    places = {(f.pos.file, f.pos.line, f.name) for f in kws}
    # checked by hand: stray requirements in running text
    assert ("content.tex", 505, "RECOMMENDED") in places          # UUID version in Exporting Objects
    assert ("transport-pci.tex", 653, "MUST") in places           # device-specific configuration capability
    assert ("device-types/net/description.tex", 3692, "MUST") in places  # legacy framing requirements
    # never reported: appendices, the conformance chapter, quoted mentions, listed legacy sections
    files = Counter(f.pos.file for f in kws)
    assert not {"conformance.tex", "newdevice.tex", "changelog.tex", "introduction.tex"} & set(files)
    # "Legacy Interface: Reserved Feature Bits" (content.tex 1012 to the end, with MAY at
    # 1014 and MUST at 1017, 1032, 1033) is listed by the legacy conformance clause
    assert not [f for f in kws if f.pos.file == "content.tex" and f.pos.line >= 1012]
    assert [(k.pos.line, k.word) for k in tree.keywords
            if k.pos.file == "content.tex" and k.pos.line >= 1012] == [
        (1014, "MAY"), (1017, "MUST"), (1032, "MUST"), (1033, "MUST"), (1041, "SHOULD NOT")]
