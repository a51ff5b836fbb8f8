"""What a device's transport layout shows, as named facts with evidence.

The PCI and MMIO transport rules that are about layout (ids, which
capabilities exist, their alignment and lengths, the notify multiplier,
MMIO's magic and version) are judged from what a driver can read. Each
fact is ``Fact(holds, evidence)``; ``holds`` is None when the rule's
condition does not hold for this device (for instance no shared memory
capability to check). The conformance engine turns facts into verdicts;
this module only reads registers.
"""
from __future__ import annotations

from dataclasses import dataclass

from device_ref import virtio_constants as R
from device_ref.transports.mmio import MmioTransport
from device_ref.transports.pci import PciConfigSpace, PciTransport, VirtioCap

F_NOTIFICATION_DATA = R.F_NOTIFICATION_DATA


@dataclass(frozen=True)
class Fact:
    holds: bool | None          # None: does not apply to this device
    evidence: str


def _pow2(n: int) -> bool:
    return n > 0 and n & (n - 1) == 0


def bar_size(cfg: PciConfigSpace, bar: int) -> int:
    """Size a memory BAR the standard way (write all ones, read the mask
    back, restore), with memory decoding off meanwhile."""
    reg = R.PCI_BAR0 + 4 * bar
    command = cfg.read(R.PCI_COMMAND, 2)
    cfg.write(R.PCI_COMMAND, 2, command & ~R.PCI_COMMAND_MEMORY)
    try:
        low = cfg.read(reg, 4)
        wide = low & 0x6 == R.PCI_BAR_TYPE_64 and bar < 5
        high = cfg.read(reg + 4, 4) if wide else 0
        cfg.write(reg, 4, 0xFFFFFFFF)
        mask = cfg.read(reg, 4) & 0xFFFFFFF0
        if wide:
            cfg.write(reg + 4, 4, 0xFFFFFFFF)
            mask |= cfg.read(reg + 4, 4) << 32
            cfg.write(reg + 4, 4, high)
            size = (~mask + 1) & 0xFFFF_FFFF_FFFF_FFFF
        else:
            size = (~mask + 1) & 0xFFFFFFFF
        cfg.write(reg, 4, low)
    finally:
        cfg.write(R.PCI_COMMAND, 2, command)
    return size if mask else 0


def _cap_len(cfg: PciConfigSpace, cap: VirtioCap) -> int:
    return cfg.read(cap.at + 2, 1)


def pci_facts(t: PciTransport, offered: int) -> dict[str, Fact]:
    """Layout facts of a virtio PCI function (``offered``: its device features)."""
    lay = t.layout
    facts: dict[str, Fact] = {}
    facts["vendor-id"] = Fact(lay.vendor == R.VIRTIO_PCI_VENDOR, f"vendor id {lay.vendor:#06x}")
    modern = lay.pci_device == R.VIRTIO_PCI_MODERN_BASE + lay.device_type
    transitional = lay.pci_device in R.VIRTIO_PCI_TRANSITIONAL
    facts["device-id"] = Fact(modern or transitional,
                              f"device id {lay.pci_device:#06x} for device type {lay.device_type}")
    if modern:
        revision = t.cfg.read(R.PCI_REVISION, 1)
        subsystem = t.cfg.read(R.PCI_SUBSYSTEM_ID, 2)
        facts["non-transitional-ids"] = Fact(
            R.VIRTIO_PCI_MODERN_BASE <= lay.pci_device <= 0x107F and revision >= 1
            and subsystem >= 0x40,
            f"device id {lay.pci_device:#06x}, revision {revision}, subsystem id {subsystem:#x}")
    else:
        facts["non-transitional-ids"] = Fact(None, f"a transitional device (device id "
                                                   f"{lay.pci_device:#06x})")
    by_type: dict[int, list[VirtioCap]] = {}
    for cap in lay.caps:
        by_type.setdefault(cap.cfg_type, []).append(cap)

    def present(name: str, cfg_type: int) -> None:
        caps = by_type.get(cfg_type, [])
        facts[f"{name}-present"] = Fact(bool(caps), f"{len(caps)} {R.CAP_NAMES[cfg_type]} "
                                                    f"capabilities")
    for name, cfg_type in (("common", R.CAP_COMMON), ("notify", R.CAP_NOTIFY),
                           ("isr", R.CAP_ISR), ("pci-cfg", R.CAP_PCI_CFG)):
        present(name, cfg_type)
    common = lay.first(R.CAP_COMMON)
    facts["common-aligned"] = Fact(common.offset % 4 == 0 if common else None,
                                   f"common configuration at offset {common.offset:#x}"
                                   if common else "no common configuration")
    device = lay.first(R.CAP_DEVICE)
    facts["device-cfg-aligned"] = Fact(device.offset % 4 == 0 if device else None,
                                       f"device configuration at offset {device.offset:#x}"
                                       if device else "no device configuration capability")
    notify = lay.first(R.CAP_NOTIFY)
    if notify is None:
        for key in ("notify-aligned", "notify-multiplier", "notify-length", "notify-layout-data"):
            facts[key] = Fact(None, "no notification capability")
    else:
        mult = notify.notify_multiplier
        if offered >> F_NOTIFICATION_DATA & 1:
            facts["notify-aligned"] = Fact(None, "device offers VIRTIO_F_NOTIFICATION_DATA")
        else:
            facts["notify-aligned"] = Fact(notify.offset % 2 == 0,
                                           f"notify capability offset {notify.offset:#x}")
        facts["notify-multiplier"] = Fact(mult == 0 or (_pow2(mult) and mult % 2 == 0),
                                          f"notify_off_multiplier {mult}")
        worst = 0
        for q in range(t.num_queues()):
            t.common_write("queue_select", q)
            worst = max(worst, t.common_read("queue_notify_off") * mult + 2)
        facts["notify-length"] = Fact(notify.length >= max(2, worst),
                                      f"cap.length {notify.length}, the farthest queue needs "
                                      f"{worst}")
        if offered >> F_NOTIFICATION_DATA & 1:
            ok = (notify.offset % 4 == 0 and (mult == 0 or (_pow2(mult) and mult % 4 == 0))
                  and notify.length >= max(4, worst + 2))
            facts["notify-layout-data"] = Fact(ok, f"offset {notify.offset:#x}, multiplier "
                                                   f"{mult}, length {notify.length} (32-bit "
                                                   f"notifications need {worst + 2})")
        else:
            facts["notify-layout-data"] = Fact(None, "device does not offer "
                                                     "VIRTIO_F_NOTIFICATION_DATA")
    least = {R.CAP_NOTIFY: 20, R.CAP_VENDOR: 6}     # others: struct virtio_pci_cap's 16
    short = [f"{c.name} at {c.at:#x} cap_len {_cap_len(t.cfg, c)}" for c in lay.caps
             if _cap_len(t.cfg, c) < least.get(c.cfg_type, 16)]
    facts["cap-len"] = Fact(not short, "; ".join(short) or
                            f"{len(lay.caps)} virtio capabilities, each cap_len covers its fields")
    shm = by_type.get(R.CAP_SHARED_MEMORY, [])
    if shm:
        sizes = {c.bar: bar_size(t.cfg, c.bar) for c in shm}
        outside = [f"id {c.id}: {c.offset:#x}+{c.length:#x} in a {sizes[c.bar]:#x}-byte BAR"
                   for c in shm if c.offset + c.length > sizes[c.bar]]
        facts["shm-in-bar"] = Fact(not outside, "; ".join(outside) or
                                   f"{len(shm)} shared memory regions inside their BARs")
        ids = [c.id for c in shm]
        facts["shm-unique-id"] = Fact(len(set(ids)) == len(ids), f"shared memory ids {ids}")
    else:
        facts["shm-in-bar"] = Fact(None, "no shared memory capability")
        facts["shm-unique-id"] = Fact(None, "no shared memory capability")
    vendor = by_type.get(R.CAP_VENDOR, [])
    if vendor:
        bad = []
        for c in vendor:
            if c.length % 4 or c.id == R.VIRTIO_PCI_VENDOR:
                bad.append(f"at {c.at:#x}: cap_len {c.length}, vendor_id {c.id:#x}")
        facts["vendor-data"] = Fact(not bad, "; ".join(bad) or
                                    f"{len(vendor)} vendor data capabilities")
    else:
        facts["vendor-data"] = Fact(None, "no vendor data capability")
    facts["pci-basics"] = _pci_basics(t)
    if t.layout.msix_at is not None:
        size = (t.cfg.read(t.layout.msix_at + R.MSIX_CONTROL, 2) & R.MSIX_TABLE_SIZE_MASK) + 1
        facts["msix-table-size"] = Fact(2 <= size <= 0x800, f"MSI-X table of {size} vectors")
    else:
        facts["msix-table-size"] = Fact(None, "no MSI-X capability")
    return facts


def _pci_basics(t: PciTransport) -> Fact:
    """A few rules of the PCI specification a register view can check: each
    assigned memory BAR is a power of two in size and aligned to it, and
    the MSI-X table and pending-bit array lie inside their BARs."""
    bad = []
    sizes = {bar: bar_size(t.cfg, bar) for bar in t.layout.bars}
    for bar, size in sizes.items():
        if not _pow2(size) or t.layout.bars[bar] % size:
            bad.append(f"BAR {bar} at {t.layout.bars[bar]:#x} sizes as {size:#x}")
    at = t.layout.msix_at
    if at is not None:
        n = (t.cfg.read(at + R.MSIX_CONTROL, 2) & R.MSIX_TABLE_SIZE_MASK) + 1
        for what, reg, length in (("table", R.MSIX_TABLE, 16 * n), ("PBA", R.MSIX_PBA,
                                                                     -(-n // 64) * 8)):
            word = t.cfg.read(at + reg, 4)
            bir, off = word & 7, word & ~7
            if bir not in sizes or off + length > sizes[bir]:
                bad.append(f"MSI-X {what} at BAR {bir} +{off:#x} ({length} bytes) is not "
                           f"inside the BAR")
    return Fact(not bad, "; ".join(bad) or
                f"{len(sizes)} BARs sized and aligned, MSI-X structures inside their BARs")


def mmio_facts(t: MmioTransport) -> dict[str, Fact]:
    """Layout facts of a virtio-mmio register block."""
    magic = t.reg_read("magic")
    facts = {"magic": Fact(magic == R.MMIO_MAGIC_VALUE, f"MagicValue {magic:#x}")}
    if t.legacy:
        facts["version"] = Fact(None, "a legacy (version 1) device: the legacy interface "
                                      "section governs it")
    else:
        facts["version"] = Fact(t.version == 2, f"Version {t.version}")
    return facts


PCI_FACTS = ("vendor-id", "device-id", "non-transitional-ids", "common-present", "notify-present", "isr-present",
             "pci-cfg-present", "common-aligned", "device-cfg-aligned", "notify-aligned",
             "notify-multiplier", "notify-length", "notify-layout-data", "cap-len", "shm-in-bar", "shm-unique-id",
             "vendor-data", "msix-table-size", "pci-basics")
MMIO_FACTS = ("magic", "version")
