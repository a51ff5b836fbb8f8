"""The device side of the PCI and MMIO transports, in process.

``PciFunction`` and ``MmioRegisters`` put a ``DeviceBackend`` (a reference
device) behind the registers a real transport has: configuration space
with capabilities, the common configuration, notification, ISR and MSI-X
table for PCI; the version 2 register block for MMIO. ``RegisterSpace`` is
a ``RegisterBus`` that routes each access to the block that holds the
address. The reference devices are modern-only, so
there is no legacy MMIO model here. With them, ``PciTransport`` and
``MmioTransport`` (the same code that drives QEMU) drive the reference
devices in process, and transport-level faults (``TransportFaults``) can be
injected to show the conformance suite catches them.

Interrupts work as on the real thing: an MSI-X message is a 4-byte write
of the entry's data at the entry's address in guest memory (when the
function has MSI-X enabled, the entry is unmasked and the vector is not
NO_VECTOR), otherwise the ISR / InterruptStatus bits are set.
"""
from __future__ import annotations

import mmap
import struct
from dataclasses import dataclass

from device_ref.device.features import FEATURES_OK
from device_ref.ring.memory import GuestMemory as MemoryMap
from device_ref.transport import DeviceBackend, QueueConfig, TransportError
from device_ref import virtio_constants as R
from device_ref.transports.bus import RamWindow
from device_ref.transports.mmio import MmioTransport
from device_ref.transports.pci import PciTransport

PCI_ECAM = 0xB000_0000
PCI_BAR4 = 0xE000_0000        # common +0, ISR +0x1000, device +0x2000, notify +0x3000
PCI_BAR1 = 0xE100_0000        # MSI-X table +0, PBA +0x800
MMIO_BASE = 0xFEB0_0000
NOTIFY_MULTIPLIER = 4
_CAPS = ((0x40, R.CAP_COMMON, 0x0000, 0x1000), (0x50, R.CAP_ISR, 0x1000, 0x1000),
         (0x60, R.CAP_DEVICE, 0x2000, 0x1000), (0x70, R.CAP_NOTIFY, 0x3000, 0x1000))
PCI_CFG_AT = 0x84             # struct virtio_pci_cfg_cap: a capability plus pci_cfg_data[4]
MSIX_AT = 0x98
# Capabilities a driver has to pass over: a reserved cfg_type (7) with a
# cap_len longer than the structure, a second common configuration (the
# driver uses the first), a device configuration in a reserved BAR (7).
# The first two point at a block that only logs: any access is a breach.
UNUSABLE_CAPS = ((0xA4, 7, 4, 0x4000, 20), (0xB8, R.CAP_COMMON, 4, 0x4000, 16),
                 (0xC8, R.CAP_DEVICE, 7, 0x0000, 16))
VENDOR_DATA_AT = 0xD8        # a vendor data capability: 8 bytes, vendor_id 0x1234
BAR_BASES = {1: PCI_BAR1, 4: PCI_BAR4}


@dataclass
class TransportFaults:
    """Deliberate transport-level defects (for mutants); all off by default."""
    ignore_queue_enable: bool = False       # queue_enable / QueueReady writes do nothing
    queue_size: int | None = None           # report this maximum queue size instead
    frozen_generation: bool = False         # config_generation never changes
    feature_select_alias: bool = False      # a select above 1 acts as 1 (as QEMU 7.2's MMIO)
    readable_write_only: bool = False       # MMIO: write-only registers read back their value
    keep_enable_on_reset: bool = False      # queue_enable / QueueReady survive a reset


@dataclass(frozen=True)
class Access:
    """One register access as the device side saw it."""
    op: str          # "r" or "w"
    block: str       # cfg, common, isr, device, notify, msix, mmio
    offset: int
    width: int
    value: int


class RegisterSpace:
    """A ``RegisterBus`` over in-process register blocks; with ``log`` it
    records every access (what a device can judge a driver on)."""

    def __init__(self, log: bool = False) -> None:
        self.blocks: list[tuple[int, int, object, str]] = []
        self.accesses = 0
        self.log: list[Access] | None = [] if log else None

    def map(self, base: int, size: int, block, name: str) -> None:
        self.blocks.append((base, size, block, name))

    def _find(self, addr: int, width: int):
        for base, size, block, name in self.blocks:
            if base <= addr and addr + width <= base + size:
                return block, addr - base, name
        raise TransportError(f"no register at {addr:#x} (+{width})")

    def read(self, addr: int, width: int) -> int:
        self.accesses += 1
        block, off, name = self._find(addr, width)
        value = block.read(off, width) & ((1 << 8 * width) - 1)
        if self.log is not None:
            self.log.append(Access("r", name, off, width, value))
        return value

    def write(self, addr: int, width: int, value: int) -> None:
        self.accesses += 1
        block, off, name = self._find(addr, width)
        if self.log is not None:
            self.log.append(Access("w", name, off, width, value))
        block.write(off, width, value)

    def let_run(self) -> None:
        pass


@dataclass
class _Queue:
    size: int
    vector: int = R.NO_VECTOR
    enabled: bool = False
    desc: int = 0
    driver: int = 0
    device: int = 0


class _Backed:
    """Shared by both models: the device, its memory, features by word."""

    def __init__(self, device: DeviceBackend, window: RamWindow, faults: TransportFaults) -> None:
        self.device = device
        self.window = window
        self.faults = faults
        self.memory = MemoryMap()
        self.memory.add_region(window.base, window.buffer)
        self.dfselect = 0
        self.gfselect = 0
        self.driver_words: dict[int, int] = {}
        self.queue_select = 0
        self.generation_seen: int | None = None
        device.attach(self)
        self._fresh_queues()

    def _fresh_queues(self) -> None:
        keep = getattr(self, "queues", None) if self.faults.keep_enable_on_reset else None
        self.queues = [_Queue(self.max_size(q)) for q in range(self.device.num_queues())]
        if keep:
            for q, old in zip(self.queues, keep):
                q.enabled = old.enabled

    def max_size(self, q: int) -> int:
        return self.faults.queue_size or self.device.queue_max_size(q)

    def _sel(self, sel: int) -> int:
        return min(sel, 1) if self.faults.feature_select_alias else sel

    def device_feature_word(self) -> int:
        return self.device.device_features() >> 32 * self._sel(self.dfselect) & 0xFFFFFFFF

    def driver_feature_write(self, value: int) -> None:
        self.driver_words[self._sel(self.gfselect)] = value & 0xFFFFFFFF
        self.device.set_driver_features(sum(v << 32 * k for k, v in self.driver_words.items()))

    def generation(self) -> int:
        return 0 if self.faults.frozen_generation else self.device.config_generation()

    def status_write(self, value: int) -> None:
        before = self.device.read_status()
        self.device.write_status(value)
        after = self.device.read_status()
        if value == 0:
            self.driver_words.clear()
            self.dfselect = self.gfselect = 0
            self.queue_select = 0
            self._fresh_queues()
            self.on_reset()
        elif after & FEATURES_OK and not before & FEATURES_OK:
            self.device.set_memory(self.memory)

    def on_reset(self) -> None:
        pass

    def current(self) -> _Queue | None:
        return self.queues[self.queue_select] if self.queue_select < len(self.queues) else None

    def reset_queue(self, q: int) -> None:
        """A 1 written to queue_reset / QueueReset: the device resets the
        queue at once (so the register reads 0 again) and it is disabled."""
        try:
            self.device.reset_queue(q)
        except TransportError:
            return           # not negotiated: the write is ignored
        self.queues[q] = _Queue(self.max_size(q))

    def enable(self, q: int) -> None:
        state = self.queues[q]
        if self.faults.ignore_queue_enable:
            return
        try:
            self.device.set_queue(q, QueueConfig(state.size, state.desc, state.driver,
                                                 state.device))
            self.device.enable_queue(q)
        except TransportError as exc:
            # a register write cannot fail: the device refuses the queue and says so
            needs_reset = getattr(self.device, "needs_reset", None)
            if needs_reset is not None:
                needs_reset(f"queue {q} refused: {exc}")
            return
        state.enabled = True

    # -- DeviceHost ---------------------------------------------------------
    def queue_interrupt(self, queue: int) -> None:
        raise NotImplementedError

    def config_interrupt(self) -> None:
        raise NotImplementedError


class PciFunction(_Backed):
    """A modern virtio-pci function: configuration space plus BAR blocks."""

    def __init__(self, device: DeviceBackend, window: RamWindow,
                 faults: TransportFaults | None = None) -> None:
        super().__init__(device, window, faults or TransportFaults())
        self.cfg = bytearray(4096)
        self.vectors = self.device.num_queues() + 1
        self.msix = bytearray(16 * self.vectors)
        for v in range(self.vectors):
            self.msix[16 * v + 12] = R.MSIX_ENTRY_MASKED
        self.isr = 0
        struct.pack_into("<HH", self.cfg, 0, R.VIRTIO_PCI_VENDOR,
                         R.VIRTIO_PCI_MODERN_BASE + device.device_id())
        struct.pack_into("<H", self.cfg, R.PCI_STATUS, R.PCI_STATUS_CAP_LIST)
        self.cfg[0x08] = 1                                   # revision 1: modern
        struct.pack_into("<H", self.cfg, R.PCI_SUBSYSTEM_ID, 0x40)   # no legacy driver binds
        struct.pack_into("<I", self.cfg, R.PCI_BAR0 + 4, PCI_BAR1)
        struct.pack_into("<II", self.cfg, R.PCI_BAR0 + 16, PCI_BAR4 | R.PCI_BAR_TYPE_64, 0)
        self.cfg[R.PCI_CAP_PTR] = _CAPS[0][0]
        for i, (at, cfg_type, off, length) in enumerate(_CAPS):
            nxt = _CAPS[i + 1][0] if i + 1 < len(_CAPS) else PCI_CFG_AT
            cap_len = 20 if cfg_type == R.CAP_NOTIFY else 16
            struct.pack_into("<BBBBBB2xII", self.cfg, at, R.PCI_CAP_ID_VNDR, nxt, cap_len,
                             cfg_type, 4, 0, off, length)
            if cfg_type == R.CAP_NOTIFY:
                struct.pack_into("<I", self.cfg, at + 16, NOTIFY_MULTIPLIER)
        struct.pack_into("<BBBBBB2xII", self.cfg, PCI_CFG_AT, R.PCI_CAP_ID_VNDR, MSIX_AT, 20,
                         R.CAP_PCI_CFG, 0, 0, 0, 0)
        struct.pack_into("<BBHII", self.cfg, MSIX_AT, R.PCI_CAP_ID_MSIX, UNUSABLE_CAPS[0][0],
                         self.vectors - 1, 1, 1 | 0x800)      # table BAR 1 +0, PBA BAR 1 +0x800
        for i, (at, cfg_type, bar, off, cap_len) in enumerate(UNUSABLE_CAPS):
            nxt = UNUSABLE_CAPS[i + 1][0] if i + 1 < len(UNUSABLE_CAPS) else VENDOR_DATA_AT
            struct.pack_into("<BBBBBB2xII", self.cfg, at, R.PCI_CAP_ID_VNDR, nxt, cap_len,
                             cfg_type, bar, 0, off, 0x1000)
        struct.pack_into("<BBBBH2x", self.cfg, VENDOR_DATA_AT, R.PCI_CAP_ID_VNDR, 0, 8,
                         R.CAP_VENDOR, 0x1234)
        self.config_vector = R.NO_VECTOR

    def map_into(self, space: RegisterSpace, slot: int = 4) -> int:
        """Map the function into ``space``; returns its configuration base."""
        base = PCI_ECAM + (slot << 15)
        self.space = space
        space.map(base, 4096, _Block(self._cfg_read, self._cfg_write), "cfg")
        space.map(PCI_BAR4, 0x1000, _Block(self._common_read, self._common_write), "common")
        space.map(PCI_BAR4 + 0x1000, 0x1000, _Block(self._isr_read, _ignore), "isr")
        space.map(PCI_BAR4 + 0x2000, 0x1000, _Block(self._devcfg_read, self._devcfg_write),
                  "device")
        space.map(PCI_BAR4 + 0x3000, 0x1000, _Block(_zero, self._notify_write), "notify")
        space.map(PCI_BAR1, 0x1000, _Block(self._msix_read, self._msix_write), "msix")
        space.map(PCI_BAR4 + 0x4000, 0x1000, _Block(_zero, _ignore), "unusable")
        return base

    # -- configuration space -------------------------------------------------
    def _cfg_read(self, off: int, width: int) -> int:
        if off == PCI_CFG_AT + 16:
            self._window_access(None)
        # Status bit 3 (interrupt status) follows the ISR byte
        status = R.PCI_STATUS_CAP_LIST | (8 if self.isr else 0)
        struct.pack_into("<H", self.cfg, R.PCI_STATUS, status)
        return int.from_bytes(self.cfg[off:off + width], "little")

    def _window_access(self, value: int | None) -> None:
        """The PCI configuration access capability: a read or write of
        pci_cfg_data is an access of cap.length bytes at cap.offset in the
        BAR cap.bar names."""
        bar, offset, length = struct.unpack_from("<B3xII", self.cfg, PCI_CFG_AT + 4)
        if bar not in BAR_BASES or length not in (1, 2, 4):
            return
        addr = BAR_BASES[bar] + offset
        if value is None:
            data = self.space.read(addr, length)
            self.cfg[PCI_CFG_AT + 16:PCI_CFG_AT + 16 + length] = data.to_bytes(length, "little")
        else:
            self.space.write(addr, length, value & ((1 << 8 * length) - 1))

    def _cfg_write(self, off: int, width: int, value: int) -> None:
        if R.PCI_BAR0 <= off < R.PCI_BAR0 + 24 and width == 4:
            self._bar_write(off, value)
        elif off == R.PCI_COMMAND and width == 2:
            struct.pack_into("<H", self.cfg, off, value & 0x0406)
        elif off == MSIX_AT + R.MSIX_CONTROL and width == 2:
            ctrl = struct.unpack_from("<H", self.cfg, off)[0]
            keep = R.MSIX_CONTROL_ENABLE | R.MSIX_CONTROL_MASKALL
            struct.pack_into("<H", self.cfg, off, ctrl & ~keep | value & keep)
        elif PCI_CFG_AT + 4 <= off and off + width <= PCI_CFG_AT + 20 and off != PCI_CFG_AT + 5:
            self.cfg[off:off + width] = value.to_bytes(width, "little")
            if off == PCI_CFG_AT + 16:
                self._window_access(value)

    def _bar_write(self, off: int, value: int) -> None:
        """BAR sizing: all ones reads back the size mask, anything else the
        fixed address (the model's BARs do not move)."""
        sizes = {R.PCI_BAR0 + 4: (PCI_BAR1, 0x1000, 0), R.PCI_BAR0 + 16: (PCI_BAR4, 0x8000, 4),
                 R.PCI_BAR0 + 20: (0, 0, 0)}
        if off not in sizes:
            return
        base, size, flags = sizes[off]
        if off == R.PCI_BAR0 + 20:      # the high half of the 64-bit BAR 4
            shown = 0xFFFFFFFF if value == 0xFFFFFFFF else 0
        else:
            shown = (~(size - 1) & 0xFFFFFFFF if value == 0xFFFFFFFF else base) | flags
        struct.pack_into("<I", self.cfg, off, shown)

    def msix_enabled(self) -> bool:
        ctrl = struct.unpack_from("<H", self.cfg, MSIX_AT + R.MSIX_CONTROL)[0]
        return bool(ctrl & R.MSIX_CONTROL_ENABLE) and not ctrl & R.MSIX_CONTROL_MASKALL

    # -- common configuration -------------------------------------------------
    def _common_read(self, off: int, width: int) -> int:
        name = _COMMON_AT.get((off, width))
        q = self.current()
        if name == "device_feature_select":
            return self.dfselect
        if name == "device_feature":
            return self.device_feature_word()
        if name == "driver_feature_select":
            return self.gfselect
        if name == "driver_feature":
            return self.driver_words.get(self._sel(self.gfselect), 0)
        if name == "config_msix_vector":
            return self.config_vector
        if name == "num_queues":
            return self.device.num_queues()
        if name == "device_status":
            return self.device.read_status()
        if name == "config_generation":
            return self.generation()
        if name == "queue_select":
            return self.queue_select
        if q is None:
            return 0             # no such queue: size 0, and nothing else to show
        if name == "queue_size":
            return q.size
        if name == "queue_msix_vector":
            return q.vector
        if name == "queue_enable":
            return int(q.enabled)
        if name == "queue_notify_off":
            return self.queue_select
        for area in ("desc", "driver", "device"):
            if name == f"queue_{area}_lo":
                return getattr(q, area) & 0xFFFFFFFF
            if name == f"queue_{area}_hi":
                return getattr(q, area) >> 32
        return 0

    def _common_write(self, off: int, width: int, value: int) -> None:
        name = _COMMON_AT.get((off, width))
        q = self.current()
        if name == "device_feature_select":
            self.dfselect = value
        elif name == "driver_feature_select":
            self.gfselect = value
        elif name == "driver_feature":
            self.driver_feature_write(value)
        elif name == "config_msix_vector":
            self.config_vector = value if value < self.vectors else R.NO_VECTOR
        elif name == "device_status":
            self.status_write(value & 0xFF)
        elif name == "queue_select":
            self.queue_select = value
        elif name == "queue_reset" and q is not None and value == 1:
            self.reset_queue(self.queue_select)
        elif name == "queue_msix_vector" and q is not None:
            q.vector = value if value < self.vectors else R.NO_VECTOR   # any time
        elif q is None or q.enabled:
            return               # nothing to set, or set only before enabling
        elif name == "queue_size":
            q.size = value
        elif name == "queue_enable" and value == 1:
            self.enable(self.queue_select)
        elif name is not None:
            for area in ("desc", "driver", "device"):
                cur = getattr(q, area)
                if name == f"queue_{area}_lo":
                    setattr(q, area, cur & ~0xFFFFFFFF | value)
                elif name == f"queue_{area}_hi":
                    setattr(q, area, cur & 0xFFFFFFFF | value << 32)

    def on_reset(self) -> None:
        self.config_vector = R.NO_VECTOR
        self.isr = 0

    # -- the other structures ---------------------------------------------------
    def _isr_read(self, off: int, width: int) -> int:
        value, self.isr = self.isr, 0
        return value if off == 0 else 0

    def _devcfg_read(self, off: int, width: int) -> int:
        return int.from_bytes(self.device.read_config(off, width), "little")

    def _devcfg_write(self, off: int, width: int, value: int) -> None:
        self.device.write_config(off, value.to_bytes(width, "little"))

    def _notify_write(self, off: int, width: int, value: int) -> None:
        queue = off // NOTIFY_MULTIPLIER
        if queue < len(self.queues) and self.queues[queue].enabled:
            self.device.notify(queue)

    def _msix_read(self, off: int, width: int) -> int:
        if off >= len(self.msix):
            return 0
        return int.from_bytes(self.msix[off:off + width], "little")

    def _msix_write(self, off: int, width: int, value: int) -> None:
        if off + width <= len(self.msix):
            self.msix[off:off + width] = value.to_bytes(width, "little")

    def _message(self, vector: int) -> bool:
        if vector == R.NO_VECTOR or vector >= self.vectors or not self.msix_enabled():
            return False
        lo, hi, data, ctrl = struct.unpack_from("<IIII", self.msix, 16 * vector)
        if ctrl & R.MSIX_ENTRY_MASKED:
            return True          # masked: the message is held back (pending), not lost to INTx
        self.memory.write(lo | hi << 32, struct.pack("<I", data))
        return True

    def queue_interrupt(self, queue: int) -> None:
        self.isr |= R.ISR_QUEUE
        if self.msix_enabled():
            self._message(self.queues[queue].vector)

    def config_interrupt(self) -> None:
        self.isr |= R.ISR_CONFIG
        if self.msix_enabled():
            self._message(self.config_vector)


class MmioRegisters(_Backed):
    """A virtio-mmio register block, version 2."""

    def __init__(self, device: DeviceBackend, window: RamWindow,
                 faults: TransportFaults | None = None) -> None:
        super().__init__(device, window, faults or TransportFaults())
        self.interrupt_status = 0
        self.written: dict[int, int] = {}

    def map_into(self, space: RegisterSpace, base: int = MMIO_BASE) -> int:
        space.map(base, 0x200, _Block(self._read, self._write), "mmio")
        return base

    def _read(self, off: int, width: int) -> int:
        if off >= R.MMIO_CONFIG:
            return int.from_bytes(self.device.read_config(off - R.MMIO_CONFIG, width), "little")
        q = self.current()
        regs = R.MMIO
        if off == regs["magic"]:
            return R.MMIO_MAGIC_VALUE
        if off == regs["version"]:
            return 2
        if off == regs["device_id"]:
            return self.device.device_id()
        if off == regs["vendor_id"]:
            return 0x554D4551
        if off == regs["device_features"]:
            return self.device_feature_word()
        if off == regs["queue_num_max"]:
            return self.max_size(self.queue_select) if q is not None else 0
        if off == regs["queue_ready"]:
            return int(q.enabled) if q is not None else 0
        if off == regs["interrupt_status"]:
            return self.interrupt_status
        if off == regs["status"]:
            return self.device.read_status()
        if off == regs["config_generation"]:
            return self.generation()
        if self.faults.readable_write_only:
            return self.written.get(off, 0)
        return 0

    def _write(self, off: int, width: int, value: int) -> None:
        if off >= R.MMIO_CONFIG:
            self.device.write_config(off - R.MMIO_CONFIG, value.to_bytes(width, "little"))
            return
        self.written[off] = value
        regs = R.MMIO
        q = self.current()
        if off == regs["device_features_sel"]:
            self.dfselect = value
        elif off == regs["driver_features_sel"]:
            self.gfselect = value
        elif off == regs["driver_features"]:
            self.driver_feature_write(value)
        elif off == regs["queue_sel"]:
            self.queue_select = value
        elif off == regs["queue_notify"]:
            queue = value & 0xFFFF
            if queue < len(self.queues) and self.queues[queue].enabled:
                self.device.notify(queue)
        elif off == regs["interrupt_ack"]:
            self.interrupt_status &= ~value
        elif off == regs["status"]:
            self.status_write(value & 0xFF)
        elif off == regs["queue_reset"] and q is not None and value == 1:
            self.reset_queue(self.queue_select)
        elif q is None or (q.enabled and off != regs["queue_ready"]):
            return
        elif off == regs["queue_num"]:
            q.size = value
        elif off == regs["queue_ready"]:
            if value == 1 and not q.enabled:
                self.enable(self.queue_select)
            elif value == 0:
                q.enabled = False        # the queue stops: notifications are ignored
        else:
            for area in ("desc", "driver", "device"):
                cur = getattr(q, area)
                if off == regs[f"queue_{area}_low"]:
                    setattr(q, area, cur & ~0xFFFFFFFF | value)
                elif off == regs[f"queue_{area}_high"]:
                    setattr(q, area, cur & 0xFFFFFFFF | value << 32)

    def on_reset(self) -> None:
        self.interrupt_status = 0

    def queue_interrupt(self, queue: int) -> None:
        self.interrupt_status |= R.MMIO_INT_VRING

    def config_interrupt(self) -> None:
        self.interrupt_status |= R.MMIO_INT_CONFIG


@dataclass
class _Block:
    read: object
    write: object


def _ignore(off: int, width: int, value: int) -> None:
    pass


def _zero(off: int, width: int) -> int:
    return 0


_COMMON_AT = {(off, width): name for name, (off, width) in R.COMMON.items()}


RAM_BASE = 0x1000_0000
RAM_SIZE = 8 << 20
KINDS = ("pci", "mmio")


@dataclass
class InProcRig:
    """A reference device behind an in-process PCI function or MMIO block,
    and the driver transport that reaches it through registers."""
    space: RegisterSpace
    model: _Backed
    transport: PciTransport | MmioTransport
    ram: mmap.mmap

    def close(self) -> None:
        self.transport.close()
        self.model.device.write_status(0)
        self.model.device.set_memory(None)
        self.model.memory = None
        try:
            self.ram.close()
        except BufferError:
            pass      # a ring view is still alive; the mapping goes with it


def register_rig(device: DeviceBackend, kind: str = "pci",
                 faults: TransportFaults | None = None, log: bool = False) -> InProcRig:
    """``device`` behind ``kind`` registers ("pci" or "mmio"); with ``log``
    the register space records every access."""
    if kind not in KINDS:
        raise TransportError(f"register transport {kind!r} is not one of {', '.join(KINDS)}")
    ram = mmap.mmap(-1, RAM_SIZE)
    window = RamWindow(RAM_BASE, memoryview(ram))
    space = RegisterSpace(log)
    if kind == "pci":
        model: _Backed = PciFunction(device, window, faults)
        transport = PciTransport(space, model.map_into(space), window)
    else:
        model = MmioRegisters(device, window, faults=faults)
        transport = MmioTransport(space, model.map_into(space), window)
    return InProcRig(space, model, transport, ram)
