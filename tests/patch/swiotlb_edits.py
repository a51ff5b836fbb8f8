"""A hand-written list of the edits a VIRTIO_F_SWIOTLB feature patch needs.

The same anchors exist in the real v1.4-cs01 tree and in
tests/fixtures/spec-tree-mini, so one list serves both. The LaTeX is our own
wording, written here by hand (the emitter generates it from the model)."""
from __future__ import annotations

from specc.patch import (AllocationItem, Edit, FeatureSlot, ItemText, Labelled, Line,
                         ListEnd, NormativeEnd)
from specc.patch.series import CommitText, NewFeature, SeriesOptions

BB = "Basic Facilities of a Virtio Device / Bounce Buffer Memory"
PCI_LAYOUT = "Virtio Transport Options / Virtio Over PCI Bus / PCI Device Layout"
PCI_CAPS = "sec:Virtio Transport Options / Virtio Over PCI Bus / Virtio Structure PCI Capabilities"
PCI_BB = PCI_LAYOUT + " / Software IOTLB bounce buffer capability"
MMIO_BB = "Virtio Transport Options / Virtio Over MMIO / Bounce buffer region"

NEW_BLOCKS = {
    f"drivernormative:{BB}", f"devicenormative:{BB}",
    f"drivernormative:{PCI_BB}", f"devicenormative:{PCI_BB}",
    f"drivernormative:{MMIO_BB}",
}

SECTION_BB = rf"""\section{{Bounce Buffer Memory}}\label{{sec:{BB}}}

With VIRTIO_F_SWIOTLB the transport describes a memory region that
belongs to the device. All buffers and virtqueue areas are placed in
that region, so the device never reaches other system memory.

\drivernormative{{\subsection}}{{Bounce Buffer Memory}}{{{BB}}}

If VIRTIO_F_SWIOTLB has been negotiated, the driver MUST place every
buffer and every virtqueue area inside the bounce buffer region.

\devicenormative{{\subsection}}{{Bounce Buffer Memory}}{{{BB}}}

If VIRTIO_F_SWIOTLB has been negotiated, the device MUST NOT access
memory outside the bounce buffer region.

"""

PCI_SUBSECTION = rf"""\subsubsection{{Software IOTLB bounce buffer capability}}\label{{sec:{PCI_BB}}}

The bounce buffer region is given by a VIRTIO_PCI_CAP_SWIOTLB_CFG
capability laid out as \field{{struct virtio_pci_cap64}}.

\devicenormative{{\paragraph}}{{Software IOTLB bounce buffer capability}}{{{PCI_BB}}}

A device that presents a VIRTIO_PCI_CAP_SWIOTLB_CFG capability SHOULD
offer VIRTIO_F_SWIOTLB.

\drivernormative{{\paragraph}}{{Software IOTLB bounce buffer capability}}{{{PCI_BB}}}

If VIRTIO_F_SWIOTLB has been negotiated, the driver MUST use only the
memory the capability describes for buffers and virtqueues.

"""

MMIO_SECTION = rf"""\subsection{{Bounce buffer region}}\label{{sec:{MMIO_BB}}}

On MMIO the platform describes the bounce buffer region, for example
with a restricted-dma-pool reserved-memory node.

\drivernormative{{\subsubsection}}{{Bounce buffer region}}{{{MMIO_BB}}}

If VIRTIO_F_SWIOTLB has been negotiated, the driver MUST use only the
region the platform describes for buffers and virtqueues.

"""


def swiotlb_edits() -> list[Edit]:
    return [
        Edit("content.tex", AllocationItem("extensions"), "24 to 40, 43 and 44", "content", "replace"),
        Edit("content.tex", AllocationItem("future"), "45 to 49, and 128 and above", "content", "replace"),
        Edit("content.tex", FeatureSlot(44),
             "\n  \\item[VIRTIO_F_SWIOTLB(44)] The transport provides a memory region\n"
             "  for bounce buffering; see \\ref{sec:" + BB + "}.\n", "content"),
        Edit("content.tex", NormativeEnd("drivernormative:Reserved Feature Bits"),
             "\nA driver SHOULD accept VIRTIO_F_SWIOTLB if it is offered.\n", "content"),
        Edit("content.tex", NormativeEnd("devicenormative:Reserved Feature Bits"),
             "\nA device MAY fail to operate further if VIRTIO_F_SWIOTLB is offered\n"
             "but not accepted.\n", "content"),
        Edit("content.tex", Line("\\input{admin.tex}"), SECTION_BB, "content", "before"),
        Edit("transport-pci.tex", ListEnd(label=PCI_CAPS), "\\item Software IOTLB bounce buffer\n",
             "transport-pci"),
        Edit("transport-pci.tex", Line("#define VIRTIO_PCI_CAP_VENDOR_CFG        9"),
             "/* Software IOTLB bounce buffer */\n#define VIRTIO_PCI_CAP_SWIOTLB_CFG       10\n",
             "transport-pci"),
        Edit("transport-pci.tex", Labelled(f"sec:{PCI_LAYOUT} / PCI configuration access capability"),
             PCI_SUBSECTION, "transport-pci", "before"),
        Edit("transport-mmio.tex", Labelled("sec:Virtio Transport Options / Virtio Over MMIO / Legacy interface"),
             MMIO_SECTION, "transport-mmio", "before"),
        Edit("transport-ccw.tex", ItemText("VIRTIO_F_RING_RESET"), "\\item VIRTIO_F_SWIOTLB\n",
             "transport-ccw"),
        Edit("conformance.tex", ListEnd(label="sec:Conformance / Driver Conformance"),
             f"\\item \\ref{{drivernormative:{BB}}}\n", "conformance"),
        Edit("conformance.tex", ListEnd(label="sec:Conformance / Device Conformance"),
             f"\\item \\ref{{devicenormative:{BB}}}\n", "conformance"),
        Edit("conformance.tex", ListEnd(label="sec:Conformance / Driver Conformance / PCI Driver Conformance"),
             f"\\item \\ref{{drivernormative:{PCI_BB}}}\n", "conformance"),
        Edit("conformance.tex", ListEnd(label="sec:Conformance / Device Conformance / PCI Device Conformance"),
             f"\\item \\ref{{devicenormative:{PCI_BB}}}\n", "conformance"),
        Edit("conformance.tex", ListEnd(label="sec:Conformance / Driver Conformance / MMIO Driver Conformance"),
             f"\\item \\ref{{drivernormative:{MMIO_BB}}}\n", "conformance"),
    ]


def swiotlb_options(**kw) -> SeriesOptions:
    base = dict(
        author="Ada Author <ada@author.test>",
        cover_subject="Add VIRTIO_F_SWIOTLB: I/O through a device-provided bounce buffer",
        cover_body="This series adds a device-independent feature bit, 44, with which\n"
                   "a device tells the driver to bounce all I/O through memory the\n"
                   "transport describes.",
        commits={
            "content": CommitText("Add VIRTIO_F_SWIOTLB", "Define the feature bit and its requirements."),
            "transport-pci": CommitText("add the software IOTLB bounce buffer capability"),
            "transport-mmio": CommitText("describe the bounce buffer region"),
            "transport-ccw": CommitText("reserve VIRTIO_F_SWIOTLB for future use"),
            "conformance": CommitText("list the bounce buffer requirements"),
        },
        fixes="https://github.com/oasis-tcs/virtio-spec/issues/999",
        feature=NewFeature("VIRTIO_F_SWIOTLB", 44),
    )
    base.update(kw)
    return SeriesOptions(**base)
