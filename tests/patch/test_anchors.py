"""Anchors resolve by structure in the mini tree; a missing one names file and anchor."""
from __future__ import annotations

import pytest

from tests.spec_trees import MINI
from specc.patch import (AllocationItem, AnchorError, Edit, edits_by_area, FeatureItem, FeatureSlot, ItemText,
                         Labelled, Line, LineAfter, ListEnd, NormativeEnd, SectionBodyEnd,
                         SectionEnd, SectionStart, Text, apply_edits, resolve_anchor)
from specc.upstream.tree import load_tree

PCI_CAPS = "sec:Virtio Transport Options / Virtio Over PCI Bus / Virtio Structure PCI Capabilities"


@pytest.fixture(scope="module")
def tree():
    return load_tree(MINI)


def at(tree, file, anchor) -> tuple[str, str]:
    """(text of the span, the 60 characters after it)."""
    sp = resolve_anchor(tree, file, anchor)
    text = tree.sources[file].text
    return text[sp.start:sp.end], text[sp.end:sp.end + 60]


def test_allocation_item_is_the_range_text(tree):
    assert at(tree, "content.tex", AllocationItem("future"))[0] == "44 to 49, and 128 and above"
    assert at(tree, "content.tex", AllocationItem("extensions"))[0] == "24 to 40, and 43"


def test_feature_item_and_slot(tree):
    span, after = at(tree, "content.tex", FeatureItem(43))
    assert span.startswith("\\item[VIRTIO_F_SUSPEND(43)]") and span.endswith("device.\n")
    # numeric order: 44 goes after 43, 42 after 41, 30 after 29, 0 before the first item
    assert at(tree, "content.tex", FeatureSlot(44))[1].startswith("\n\\end{description}")
    assert at(tree, "content.tex", FeatureSlot(42))[1].startswith("\n  \\item[VIRTIO_F_SUSPEND(43)]")
    assert at(tree, "content.tex", FeatureSlot(30))[1].startswith("\n  \\item[VIRTIO_F_VERSION_1(32)]")
    assert at(tree, "content.tex", FeatureSlot(0))[1].startswith("  \\item[VIRTIO_F_INDIRECT_DESC (28)]")
    # legacy bits are a different list
    assert at(tree, "content.tex", FeatureItem(27, legacy=True))[0].startswith("\\item[VIRTIO_F_ANY_LAYOUT (27)]")


def test_sections_by_label_and_title(tree):
    assert at(tree, "transport-pci.tex", SectionStart(
        label="sec:Virtio Transport Options / Virtio Over PCI Bus / PCI Device Layout / "
              "PCI configuration access capability"))[1].startswith("\\subsubsection{PCI configuration")
    # the end of a section comes before the next sibling's heading
    assert at(tree, "transport-mmio.tex", SectionEnd(title="Legacy interface"))[1] \
        .startswith("\n\\subsection{Features reserved")
    # body end: before the first subsection
    assert at(tree, "transport-pci.tex", SectionBodyEnd(label=PCI_CAPS))[1] \
        .startswith("\n\\drivernormative{\\subsubsection}")
    span, after = at(tree, "content.tex", NormativeEnd("drivernormative:Reserved Feature Bits"))
    assert after.startswith("\n\\devicenormative{\\section}")


def test_list_ends(tree):
    assert at(tree, "transport-mmio.tex", ListEnd(title="Features reserved for future use"))[1] \
        .startswith("\n\\end{itemize}")
    span, after = at(tree, "conformance.tex", ListEnd(label="sec:Conformance / Driver Conformance"))
    assert after.startswith("\\end{itemize}")
    assert at(tree, "transport-pci.tex", ListEnd(label=PCI_CAPS))[1].startswith("\\end{itemize}")


def test_lines_items_labels_text(tree):
    assert at(tree, "transport-pci.tex", LineAfter("VIRTIO_PCI_CAP_VENDOR_CFG", label=PCI_CAPS))[1] \
        .startswith("\\end{lstlisting}")
    assert at(tree, "content.tex", Line("\\input{admin.tex}"))[0] == "\\input{admin.tex}\n"
    assert at(tree, "transport-ccw.tex", ItemText("VIRTIO_F_RING_RESET"))[0] == "\\item VIRTIO_F_RING_RESET\n"
    assert at(tree, "content.tex", ItemText("VIRTIO_F_SUSPEND(43)"))[0].startswith("\\item[VIRTIO_F_SUSPEND(43)]")
    span, _ = at(tree, "transport-mmio.tex",
                 Labelled("sec:Virtio Transport Options / Virtio Over MMIO / Legacy interface"))
    assert span.startswith("\\subsection{Legacy interface}") and span.endswith("layout.\n")
    assert at(tree, "content.tex", Text("Currently these", label="sec:Reserved Feature Bits"))[0] == "Currently these"


@pytest.mark.parametrize("file, anchor, words", [
    ("content.tex", FeatureItem(45), "the \\item for bit 45 in the Reserved Feature Bits description list"),
    ("content.tex", SectionEnd(label="sec:No Such Section"), "sec:No Such Section"),
    ("transport-mmio.tex", ListEnd(title="Features reserved for future use", nth=2), "the itemize #2"),
    ("transport-pci.tex", Line("VIRTIO_PCI_CAP_SWIOTLB_CFG"), "VIRTIO_PCI_CAP_SWIOTLB_CFG"),
    ("transport-ccw.tex", ItemText("VIRTIO_F_SWIOTLB"), "VIRTIO_F_SWIOTLB"),
    # the label exists, but in another file
    ("content.tex", SectionStart(label="sec:Virtio Transport Options / Virtio Over MMIO / Legacy interface"),
     "it is in transport-mmio.tex"),
    ("no-such-file.tex", Line("x"), "not read by the build"),
    ("content.tex", NormativeEnd("drivernormative:Nowhere"), "drivernormative:Nowhere"),
])
def test_missing_anchor_names_file_and_anchor(tree, file, anchor, words):
    with pytest.raises(AnchorError) as exc:
        resolve_anchor(tree, file, anchor)
    msg = str(exc.value)
    assert msg.startswith(file + ": ") and words in msg and "\n" not in msg


def test_ambiguous_text_is_an_error(tree):
    with pytest.raises(AnchorError, match="ambiguous"):
        resolve_anchor(tree, "transport-pci.tex", Line("#define"))
    with pytest.raises(AnchorError, match="ambiguous"):
        resolve_anchor(tree, "transport-ccw.tex", Line("\\item"))


def test_apply_edits_is_pure_and_keeps_order(tree):
    before = dict((f, s.text) for f, s in tree.sources.items())
    out = apply_edits(tree, [
        Edit("transport-mmio.tex", ListEnd(title="Features reserved for future use"), "\\item A\n", "transport-mmio"),
        Edit("transport-mmio.tex", ListEnd(title="Features reserved for future use"), "\\item B\n", "transport-mmio"),
        Edit("content.tex", AllocationItem("future"), "45 to 49", "content", "replace"),
    ])
    assert "\\item VIRTIO_F_ADMIN_VQ\n\\item A\n\\item B\n" in out["transport-mmio.tex"]
    assert "\\item[45 to 49] Feature bits reserved" in out["content.tex"]
    assert {f: s.text for f, s in tree.sources.items()} == before


def test_overlapping_replacements_are_refused(tree):
    with pytest.raises(AnchorError, match="overlap"):
        apply_edits(tree, [
            Edit("content.tex", FeatureItem(43), "x", "content", "replace"),
            Edit("content.tex", Text("suspend the device", label="sec:Reserved Feature Bits"), "y",
                 "content", "replace"),
        ])


def test_unknown_area_or_action(tree):
    with pytest.raises(AnchorError, match="unknown area"):
        edits_by_area([Edit("content.tex", FeatureSlot(44), "x", "virtio-net")])
    with pytest.raises(AnchorError, match="unknown action"):
        apply_edits(tree, [Edit("content.tex", FeatureSlot(44), "x", "content", "instead")])
