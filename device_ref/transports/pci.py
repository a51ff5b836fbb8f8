"""The virtio PCI transport, driver side, over a register bus.

The function's configuration space is reached through ECAM (memory-mapped
configuration). Probing enables memory decoding and bus mastering, walks the
capability list, keeps the first virtio structure capability of each
cfg_type (common, notify, ISR, device; what a driver may use), decodes the
BARs they name, and finds MSI-X.

Interrupts are observed without a guest: each MSI-X table entry gets a
message address inside the first page of the RAM window and a recognisable
data word; a message to an address outside the interrupt controller's window
is an ordinary memory write, so the host sees the word appear in RAM it
maps. Vector 0 is the configuration vector, vector 1 + q that of queue q
(queues beyond the table share its last vector). Without MSI-X the ISR
register is polled instead (reading it clears it).

Notifications: queue q is notified at the notify capability's address plus
``queue_notify_off(q) * notify_off_multiplier``, with the queue index as a
16-bit write, or with VIRTIO_F_NOTIFICATION_DATA the 32-bit value built by
``notification_value``.
"""
from __future__ import annotations

import struct
from dataclasses import dataclass, field

from device_ref.transport import Interrupts, QueueConfig, TransportError
from device_ref import virtio_constants as R
from device_ref.transports.bus import RamWindow, RegisterBus
from device_ref.transports.register_transport import RegisterTransport

MSI_DATA = 0x5649_0000      # | vector: what each message writes (never 0)
MAX_CAPS = 48               # a capability list longer than this is a loop


@dataclass(frozen=True)
class VirtioCap:
    """One virtio structure capability as found in configuration space."""
    at: int             # its offset in configuration space
    cfg_type: int
    bar: int
    id: int
    offset: int
    length: int
    notify_multiplier: int = 0

    @property
    def name(self) -> str:
        return R.CAP_NAMES.get(self.cfg_type, f"cfg_type {self.cfg_type}")


@dataclass
class PciLayout:
    """What probing found: ids, BAR addresses, capabilities."""
    vendor: int
    pci_device: int
    device_type: int
    bars: dict[int, int] = field(default_factory=dict)
    caps: list[VirtioCap] = field(default_factory=list)
    other_caps: list[tuple[int, int]] = field(default_factory=list)   # (offset, id)
    msix_at: int | None = None

    def first(self, cfg_type: int) -> VirtioCap | None:
        for cap in self.caps:
            if cap.cfg_type == cfg_type and cap.bar in self.bars:
                return cap
        return None


def notification_value(queue: int, next_index: int, wrap: int | None = None) -> int:
    """The 32-bit notification with VIRTIO_F_NOTIFICATION_DATA: the queue
    index in bits 0-15, then the next available index (split ring: 16 bits;
    packed ring: 15-bit offset and the wrap counter in bit 31)."""
    if wrap is None:
        return queue & 0xFFFF | (next_index & 0xFFFF) << 16
    return queue & 0xFFFF | (next_index & 0x7FFF) << 16 | (wrap & 1) << 31


class PciConfigSpace:
    """One function's configuration space through its ECAM window."""

    def __init__(self, bus: RegisterBus, base: int) -> None:
        self.bus = bus
        self.base = base

    def read(self, offset: int, width: int) -> int:
        return self.bus.read(self.base + offset, width)

    def write(self, offset: int, width: int, value: int) -> None:
        self.bus.write(self.base + offset, width, value)


def ecam_address(ecam: int, bus: int, device: int, function: int = 0) -> int:
    return ecam + (bus << 20 | device << 15 | function << 12)


def probe(cfg: PciConfigSpace) -> PciLayout:
    """Identify a virtio PCI function and find its structures (enables
    memory decoding and bus mastering)."""
    vendor = cfg.read(R.PCI_VENDOR_ID, 2)
    pci_device = cfg.read(R.PCI_DEVICE_ID, 2)
    if vendor != R.VIRTIO_PCI_VENDOR:
        raise TransportError(f"PCI function at {cfg.base:#x} has vendor {vendor:#06x}, "
                             f"not virtio's {R.VIRTIO_PCI_VENDOR:#06x}")
    if pci_device >= R.VIRTIO_PCI_MODERN_BASE:
        device_type = pci_device - R.VIRTIO_PCI_MODERN_BASE
    elif pci_device in R.VIRTIO_PCI_TRANSITIONAL:
        device_type = cfg.read(R.PCI_SUBSYSTEM_ID, 2)
    else:
        raise TransportError(f"PCI device id {pci_device:#06x} is not a virtio device id")
    layout = PciLayout(vendor, pci_device, device_type)
    command = cfg.read(R.PCI_COMMAND, 2)
    cfg.write(R.PCI_COMMAND, 2, command | R.PCI_COMMAND_MEMORY | R.PCI_COMMAND_MASTER)
    n = 0
    while n < 6:
        low = cfg.read(R.PCI_BAR0 + 4 * n, 4)
        if low & R.PCI_BAR_IO:
            n += 1
            continue
        base = low & R.PCI_BAR_MEM_MASK & 0xFFFFFFFF
        if low & 0x6 == R.PCI_BAR_TYPE_64 and n < 5:
            base |= cfg.read(R.PCI_BAR0 + 4 * (n + 1), 4) << 32
            if base:
                layout.bars[n] = base
            n += 2
            continue
        if base:
            layout.bars[n] = base
        n += 1
    if not cfg.read(R.PCI_STATUS, 2) & R.PCI_STATUS_CAP_LIST:
        raise TransportError("PCI function has no capability list (not a modern virtio device)")
    at = cfg.read(R.PCI_CAP_PTR, 1) & 0xFC
    seen = 0
    while at:
        seen += 1
        if seen > MAX_CAPS or at < 0x40:
            raise TransportError(f"PCI capability list is malformed (pointer {at:#x})")
        cap_id = cfg.read(at, 1)
        nxt = cfg.read(at + 1, 1) & 0xFC
        if cap_id == R.PCI_CAP_ID_VNDR:
            layout.caps.append(_virtio_cap(cfg, at))
        else:
            layout.other_caps.append((at, cap_id))
            if cap_id == R.PCI_CAP_ID_MSIX and layout.msix_at is None:
                layout.msix_at = at
        at = nxt
    return layout


def _virtio_cap(cfg: PciConfigSpace, at: int) -> VirtioCap:
    cap_len = cfg.read(at + 2, 1)
    if cfg.read(at + 3, 1) == R.CAP_VENDOR:
        # vendor data: its own short layout, a 16-bit vendor_id after cfg_type
        # (kept in ``id``); no BAR, offset or length of a structure
        return VirtioCap(at, R.CAP_VENDOR, 0xFF, cfg.read(at + 4, 2), 0, cap_len)
    if cap_len < 16:
        raise TransportError(f"virtio capability at {at:#x} has cap_len {cap_len} (< 16)")
    raw = b"".join(cfg.read(at + o, 4).to_bytes(4, "little") for o in range(0, 16, 4))
    _vndr, _next, _len, cfg_type, bar, ident, offset, length = struct.unpack("<BBBBBB2xII", raw)
    mult = 0
    if cfg_type == R.CAP_NOTIFY:
        if cap_len < 20:
            raise TransportError(f"notify capability at {at:#x} has cap_len {cap_len} (< 20)")
        mult = cfg.read(at + R.CAP_NOTIFY_MULTIPLIER, 4)
    return VirtioCap(at, cfg_type, bar, ident, offset, length, mult)


class PciTransport(RegisterTransport):
    kind = "pci"

    def __init__(self, bus: RegisterBus, config_base: int, window: RamWindow,
                 msix: bool = True) -> None:
        super().__init__(bus, window)
        self.cfg = PciConfigSpace(bus, config_base)
        self.layout = probe(self.cfg)
        found = {}
        for cfg_type in (R.CAP_COMMON, R.CAP_NOTIFY, R.CAP_ISR, R.CAP_DEVICE):
            cap = self.layout.first(cfg_type)
            if cap is None and cfg_type != R.CAP_DEVICE:
                raise TransportError(f"virtio PCI device has no usable {R.CAP_NAMES[cfg_type]} "
                                     f"capability")
            found[cfg_type] = cap
        common = found[R.CAP_COMMON]
        if common.length < R.COMMON_MIN_LENGTH:
            raise TransportError(f"common configuration is {common.length} bytes "
                                 f"(< {R.COMMON_MIN_LENGTH})")
        self.common_cap = common
        self.common = self._addr(common)
        self.notify_cap = found[R.CAP_NOTIFY]
        self.isr = self._addr(found[R.CAP_ISR])
        self.device_cap = found[R.CAP_DEVICE]
        self.device_cfg = self._addr(self.device_cap) if self.device_cap else None
        self._notify_addr: dict[int, int] = {}
        self.msix_vectors = 0
        self.held = False
        self._pending = Interrupts()
        if msix and self.layout.msix_at is not None:
            self._setup_msix()

    def _addr(self, cap: VirtioCap) -> int:
        return self.layout.bars[cap.bar] + cap.offset

    # -- common configuration ------------------------------------------
    def common_read(self, name: str) -> int:
        off, width = R.COMMON[name]
        return self.bus.read(self.common + off, width)

    def common_write(self, name: str, value: int) -> None:
        off, width = R.COMMON[name]
        self.bus.write(self.common + off, width, value)

    def has_common(self, name: str) -> bool:
        off, width = R.COMMON[name]
        return off + width <= self.common_cap.length

    # -- MSI-X ----------------------------------------------------------
    def _setup_msix(self) -> None:
        at = self.layout.msix_at
        control = self.cfg.read(at + R.MSIX_CONTROL, 2)
        table = self.cfg.read(at + R.MSIX_TABLE, 4)
        bir = table & 7
        if bir not in self.layout.bars:
            raise TransportError(f"MSI-X table is in BAR {bir}, which has no address")
        self.msix_table = self.layout.bars[bir] + (table & ~7)
        self.msix_vectors = min((control & R.MSIX_TABLE_SIZE_MASK) + 1,
                                (4096 // 8))   # one 8-byte mailbox slot per vector
        for v in range(self.msix_vectors):
            entry = self.msix_table + v * R.MSIX_ENTRY_SIZE
            slot = self.mailbox + 8 * v
            self.memory.write(slot, bytes(8))
            self.bus.write(entry, 4, slot & 0xFFFFFFFF)
            self.bus.write(entry + 4, 4, slot >> 32)
            self.bus.write(entry + 8, 4, MSI_DATA | v)
            self.bus.write(entry + 12, 4, 0)          # unmasked
        self.cfg.write(at + R.MSIX_CONTROL, 2,
                       (control | R.MSIX_CONTROL_ENABLE) & ~R.MSIX_CONTROL_MASKALL)

    def disable_msix(self) -> None:
        """Turn MSI-X off: interrupts are then the ISR status (and INTx)."""
        at = self.layout.msix_at
        if at is None or not self.msix_vectors:
            return
        control = self.cfg.read(at + R.MSIX_CONTROL, 2)
        self.cfg.write(at + R.MSIX_CONTROL, 2, control & ~R.MSIX_CONTROL_ENABLE)
        self.msix_vectors = 0

    def hold_interrupts(self) -> None:
        """Stop reading the ISR status while waiting (reading clears it), so
        a caller can look at what the device shows."""
        self.held = True

    def queue_vector(self, queue: int) -> int:
        return min(1 + queue, self.msix_vectors - 1)

    def _poll_needs_bus(self) -> bool:
        return not self.msix_vectors

    def _poll_interrupts(self) -> Interrupts:
        got, self._pending = self._pending, Interrupts()
        if self.held:
            return got
        if not self.msix_vectors:
            isr = self.bus.read(self.isr, 1)
            if isr & R.ISR_QUEUE:
                got.merge(Interrupts(queues=self._each_enabled_queue()))
            if isr & R.ISR_CONFIG:
                got.config += 1
            return got
        for v in range(self.msix_vectors):
            slot = self.mailbox + 8 * v
            word = int.from_bytes(self.memory.read(slot, 4), "little")
            if not word:
                continue
            self.memory.write(slot, bytes(4))
            if word != MSI_DATA | v:
                raise TransportError(f"MSI-X vector {v} wrote {word:#x}, not {MSI_DATA | v:#x}")
            if v == 0:
                got.config += 1
            for q in self._enabled:
                if self.queue_vector(q) == v:
                    got.queues[q] = got.queues.get(q, 0) + 1
        return got

    # -- DriverTransport -------------------------------------------------
    def device_id(self) -> int:
        return self.layout.device_type

    def num_queues(self) -> int:
        return self.common_read("num_queues")

    def read_device_features(self) -> int:
        features = 0
        for sel in range(4):
            self.common_write("device_feature_select", sel)
            features |= self.common_read("device_feature") << 32 * sel
        return features

    def write_driver_features(self, features: int) -> None:
        for sel in range(4):
            self.common_write("driver_feature_select", sel)
            self.common_write("driver_feature", features >> 32 * sel & 0xFFFFFFFF)

    def read_status(self) -> int:
        return self.common_read("device_status")

    def write_status(self, status: int) -> None:
        before = self.read_status() if status else 0
        self.common_write("device_status", status)
        if status == 0:
            self._enabled.clear()
            self._notify_addr.clear()
            self._pending = Interrupts()
            if self.msix_vectors:
                for v in range(self.msix_vectors):
                    self.memory.write(self.mailbox + 8 * v, bytes(8))
        elif before == 0 and self.msix_vectors:
            # a reset forgot the vectors: give the configuration vector back
            self.common_write("config_msix_vector", 0)
            if self.common_read("config_msix_vector") != 0:
                raise TransportError("device refused MSI-X vector 0 for configuration changes")

    def reset(self) -> None:
        self.write_status(0)
        for _ in range(1000):
            if self.read_status() == 0:
                return
        raise TransportError("device status did not return to 0 after reset")

    def config_generation(self) -> int:
        return self.common_read("config_generation")

    def read_config(self, offset: int, length: int) -> bytes:
        if self.device_cfg is None:
            raise TransportError("device has no device-specific configuration capability")
        if offset < 0 or offset + length > self.device_cap.length:
            raise TransportError(f"configuration range {offset}+{length} is outside the "
                                 f"{self.device_cap.length}-byte structure")
        return self._read_block(self.device_cfg, offset, length)

    def write_config(self, offset: int, data: bytes) -> None:
        if self.device_cfg is None:
            raise TransportError("device has no device-specific configuration capability")
        if offset < 0 or offset + len(data) > self.device_cap.length:
            raise TransportError(f"configuration range {offset}+{len(data)} is outside the "
                                 f"{self.device_cap.length}-byte structure")
        self._write_block(self.device_cfg, offset, data)

    def queue_max_size(self, queue: int) -> int:
        self.common_write("queue_select", queue)
        return self.common_read("queue_size")

    def set_queue(self, queue: int, config: QueueConfig) -> None:
        self.common_write("queue_select", queue)
        self.common_write("queue_size", config.size)
        for name, addr in (("desc", config.desc), ("driver", config.driver),
                           ("device", config.device)):
            self.common_write(f"queue_{name}_lo", addr & 0xFFFFFFFF)
            self.common_write(f"queue_{name}_hi", addr >> 32)
        if self.msix_vectors:
            vector = self.queue_vector(queue)
            self.common_write("queue_msix_vector", vector)
            if self.common_read("queue_msix_vector") != vector:
                raise TransportError(f"device refused MSI-X vector {vector} for queue {queue}")
        off = self.common_read("queue_notify_off")
        self._notify_addr[queue] = (self._addr(self.notify_cap)
                                    + off * self.notify_cap.notify_multiplier)

    def enable_queue(self, queue: int) -> None:
        self.common_write("queue_select", queue)
        self.common_write("queue_enable", 1)
        self._enabled.add(queue)

    def reset_queue(self, queue: int) -> None:
        """Reset one queue (VIRTIO_F_RING_RESET): write 1 to queue_reset and
        wait until it reads 0 again."""
        if not self.has_common("queue_reset"):
            raise TransportError("the common configuration has no queue_reset field")
        self._reset_one_queue(queue, lambda q: self.common_write("queue_select", q),
                              lambda v: self.common_write("queue_reset", v),
                              lambda: self.common_read("queue_reset"))
        self._notify_addr.pop(queue, None)

    def notify_address(self, queue: int) -> int:
        addr = self._notify_addr.get(queue)
        if addr is None:
            self.common_write("queue_select", queue)
            off = self.common_read("queue_notify_off")
            addr = self._addr(self.notify_cap) + off * self.notify_cap.notify_multiplier
            self._notify_addr[queue] = addr
        return addr

    def notify(self, queue: int) -> None:
        self.kicks += 1
        self.bus.write(self.notify_address(queue), 2, queue)
        self.bus.let_run()

    def notify_data(self, queue: int, value: int) -> None:
        """A notification carrying data (VIRTIO_F_NOTIFICATION_DATA): a
        32-bit write of ``notification_value(...)``."""
        self.kicks += 1
        self.bus.write(self.notify_address(queue), 4, value)
        self.bus.let_run()

    # -- the PCI configuration access capability ----------------------------
    def _window(self, bar: int, offset: int, length: int) -> int:
        cap = next((c for c in self.layout.caps if c.cfg_type == R.CAP_PCI_CFG), None)
        if cap is None:
            raise TransportError("device has no PCI configuration access capability")
        if length not in (1, 2, 4) or offset % length:
            raise TransportError(f"window access of {length} bytes at {offset:#x} is not aligned")
        self.cfg.write(cap.at + 4, 1, bar)
        self.cfg.write(cap.at + 8, 4, offset)
        self.cfg.write(cap.at + 12, 4, length)
        return cap.at + 16

    def window_read(self, bar: int, offset: int, length: int) -> int:
        """Read ``length`` bytes of BAR ``bar`` at ``offset`` through
        configuration space alone (VIRTIO_PCI_CAP_PCI_CFG)."""
        data = self._window(bar, offset, length)
        return self.cfg.read(data, 4) & ((1 << 8 * length) - 1)

    def window_write(self, bar: int, offset: int, length: int, value: int) -> None:
        data = self._window(bar, offset, length)
        self.cfg.write(data, length, value)

    def pci_capabilities(self) -> list[bytes] | None:
        return [struct.pack("<BBBBBB2xII", R.PCI_CAP_ID_VNDR, 0, 16, c.cfg_type, c.bar, c.id,
                            c.offset, c.length) for c in self.layout.caps
                if c.cfg_type != R.CAP_VENDOR]       # vendor data has its own layout
