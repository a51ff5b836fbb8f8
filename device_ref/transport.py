"""The transport contract between a virtio driver and a virtio device.

A transport is something a driver and a device are *handed*; neither contains
one. It plays the part of the virtio "common configuration" a driver sees
(the PCI common config structure, the MMIO register block) plus the two
notification paths and the guest memory the device may reach.

Two sides, two interfaces:

``DriverTransport``  what a driver is handed to reach a device.
    Device id, device features (read), driver features (write), device
    status (read/write; writing 0 is a reset), device configuration
    (read/write) with its generation counter, per-queue size / addresses /
    enable, queue notification (kick), the interrupts the device raised
    (used-buffer per queue, configuration change), the driver's view of
    guest memory (``memory``: a ring-core memory map of every region the
    driver may use, bounce region included; ``ram_ranges()``: the ordinary
    RAM ranges in it), and the bounce-region description for
    VIRTIO_F_SWIOTLB.

``DeviceBackend``    what a transport drives on the device side.
    ``device_ref.device.core.VirtioDevice`` implements it. A transport (the
    in-process one in ``transport_inproc.py``, a vhost-user back-end server)
    forwards the driver's register accesses to these methods, hands the
    device the guest memory it may touch with ``set_memory`` (a ring-core
    ``device_ref.ring`` memory map; with VIRTIO_F_SWIOTLB negotiated it holds
    only the bounce region), and gives it a ``DeviceHost`` through which
    the device raises interrupts. A device never needs any memory other than
    what ``set_memory`` gave it.

Ordering the transports guarantee (and a vhost-user implementation must
reproduce):

* ``set_memory`` is called before the device is asked to process a queue,
  and again whenever the guest memory the device may reach changes. The
  in-process transport calls it when the driver sets FEATURES_OK, with a
  map of just the bounce region when VIRTIO_F_SWIOTLB was accepted.
* Queue addresses are *guest* addresses (bus addresses). A vhost-user
  back-end translates the front-end's virtual addresses before calling
  ``set_queue``.
* ``notify(q)`` may process buffers synchronously (in-process) or from a
  thread/event loop (vhost-user kick eventfd); the device raises
  ``DeviceHost.queue_interrupt(q)`` / ``config_interrupt()`` itself,
  honouring event suppression.
* ``write_status(0)`` is a device reset: when it returns, the device has
  forgotten rings, indices, pending requests and negotiated features, and
  no longer accesses guest memory.

Bounce regions (VIRTIO_F_SWIOTLB, bit 44): the device carries a memory
region and the driver does all I/O through it. A transport describes it as
the real transport would: on PCI a vendor capability in the
``virtio_pci_cap64`` layout with cfg_type 10 naming a BAR, an offset and a
length (``PciCap64``, ``PciBounceDescription``); on MMIO a platform
``restricted-dma-pool`` node with a base and a size
(``MmioBounceDescription``). ``BounceRegion`` is the resolved guest range.
"""
from __future__ import annotations

import struct
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Callable, Protocol, runtime_checkable
from device_ref.virtio_constants import (PCI_CAP_ID_VNDR, VIRTIO_PCI_CAP_QENC_CFG,  # noqa: F401
                                       VIRTIO_PCI_CAP_SHARED_MEMORY_CFG,
                                       VIRTIO_PCI_CAP_SWIOTLB_CFG)

# PCI capability constants (facts: vendor-specific capability id, cfg_type
# numbers assigned by the virtio PCI transport, 10 proposed for SWIOTLB).
_CAP = struct.Struct("<BBBBBB2xII")      # struct virtio_pci_cap: 16 bytes
_CAP64 = struct.Struct("<BBBBBB2xIIII")  # 24 bytes


class TransportError(Exception):
    """A transport-level failure: the peer went away, a bad register access."""


class ConfigUnavailable(TransportError):
    """The transport gives no access to the device configuration space (a
    vhost-user back-end without the CONFIG protocol feature: there the VMM
    keeps the configuration, as QEMU does for net). Not the device's fault."""


@dataclass(frozen=True)
class BounceRegion:
    """A guest-physical range reserved for bounce buffering."""
    base: int
    size: int

    @property
    def end(self) -> int:
        return self.base + self.size

    def contains(self, addr: int, length: int) -> bool:
        """True when [addr, addr+length) lies wholly inside the region."""
        return length >= 0 and self.base <= addr and addr + length <= self.end


@dataclass(frozen=True)
class PciCap64:
    """A virtio structure capability: ``struct virtio_pci_cap64``, or
    ``struct virtio_pci_cap`` when encoded narrow."""
    cfg_type: int
    bar: int
    offset: int
    length: int
    id: int = 0
    cap_next: int = 0

    def encode(self, narrow: bool = False) -> bytes:
        """The 24-byte ``virtio_pci_cap64``, or with ``narrow`` the 16-byte
        ``virtio_pci_cap`` (offset and length must then fit in 32 bits)."""
        if narrow:
            return _CAP.pack(PCI_CAP_ID_VNDR, self.cap_next, _CAP.size, self.cfg_type, self.bar,
                             self.id, self.offset, self.length)
        return _CAP64.pack(PCI_CAP_ID_VNDR, self.cap_next, _CAP64.size, self.cfg_type,
                           self.bar, self.id, self.offset & 0xFFFFFFFF, self.length & 0xFFFFFFFF,
                           self.offset >> 32, self.length >> 32)

    @classmethod
    def decode(cls, raw: bytes) -> "PciCap64":
        if len(raw) < _CAP64.size:
            raise TransportError(f"virtio_pci_cap64 needs {_CAP64.size} bytes, got {len(raw)}")
        vndr, nxt, cap_len, cfg_type, bar, ident, off, ln, off_hi, ln_hi = _CAP64.unpack_from(raw)
        if vndr != PCI_CAP_ID_VNDR:
            raise TransportError(f"capability id {vndr:#x} is not vendor-specific (0x09)")
        if cap_len < _CAP64.size:
            raise TransportError(f"cap_len {cap_len} too short for a 64-bit capability")
        return cls(cfg_type=cfg_type, bar=bar, offset=off | off_hi << 32,
                   length=ln | ln_hi << 32, id=ident, cap_next=nxt)


def decode_capability(raw: bytes) -> PciCap64:
    """Either layout, by its cap_len: a 16-byte ``virtio_pci_cap`` or a
    24-byte ``virtio_pci_cap64`` (returned as ``PciCap64`` either way)."""
    if len(raw) >= 3 and raw[2] >= _CAP64.size:
        return PciCap64.decode(raw)
    if len(raw) < _CAP.size:
        raise TransportError(f"virtio_pci_cap needs {_CAP.size} bytes, got {len(raw)}")
    vndr, nxt, cap_len, cfg_type, bar, ident, off, ln = _CAP.unpack_from(raw)
    if vndr != PCI_CAP_ID_VNDR or cap_len < _CAP.size:
        raise TransportError(f"not a virtio structure capability (id {vndr:#x}, cap_len {cap_len})")
    return PciCap64(cfg_type=cfg_type, bar=bar, offset=off, length=ln, id=ident, cap_next=nxt)


@dataclass(frozen=True)
class PciBounceDescription:
    """The bounce region as a PCI device presents it: a cfg_type 10
    capability plus the guest address each BAR was assigned."""
    cap: bytes
    bar_bases: dict[int, int]
    bar_sizes: dict[int, int]

    def region(self) -> BounceRegion:
        cap = PciCap64.decode(self.cap)
        if cap.cfg_type != VIRTIO_PCI_CAP_SWIOTLB_CFG:
            raise TransportError(f"cfg_type {cap.cfg_type} is not the SWIOTLB capability (10)")
        if cap.bar not in self.bar_bases:
            raise TransportError(f"SWIOTLB capability names unassigned BAR {cap.bar}")
        if cap.offset + cap.length > self.bar_sizes[cap.bar] or cap.length == 0:
            raise TransportError("SWIOTLB capability range does not fit in its BAR")
        return BounceRegion(self.bar_bases[cap.bar] + cap.offset, cap.length)


@dataclass(frozen=True)
class MmioBounceDescription:
    """The bounce region as an MMIO platform describes it: the ``reg`` of a
    ``restricted-dma-pool`` reserved-memory node the device points at."""
    base: int
    size: int
    compatible: str = "restricted-dma-pool"

    def region(self) -> BounceRegion:
        if self.compatible != "restricted-dma-pool" or self.size == 0:
            raise TransportError("memory-region is not a usable restricted-dma-pool")
        return BounceRegion(self.base, self.size)


BounceDescription = PciBounceDescription | MmioBounceDescription


@dataclass(frozen=True)
class QueueConfig:
    """What a driver programs for one virtqueue before enabling it.

    For a split ring: ``desc`` is the descriptor table, ``driver`` the
    available ring, ``device`` the used ring. For a packed ring: ``desc`` is
    the descriptor ring, ``driver`` the driver event suppression structure,
    ``device`` the device event suppression structure.
    """
    size: int
    desc: int
    driver: int
    device: int


@dataclass
class Interrupts:
    """Interrupts raised by a device since the driver last took them."""
    queues: dict[int, int] = field(default_factory=dict)  # queue -> count
    config: int = 0

    def __bool__(self) -> bool:
        return bool(self.queues) or bool(self.config)

    def merge(self, other: "Interrupts") -> None:
        for q, n in other.queues.items():
            self.queues[q] = self.queues.get(q, 0) + n
        self.config += other.config


@runtime_checkable
class GuestMemory(Protocol):
    """Byte access by guest address. ``device_ref.ring.memory.GuestMemory``
    (the ring-core memory map) is the implementation transports use."""

    def read(self, addr: int, length: int) -> bytes: ...

    def write(self, addr: int, data: bytes) -> None: ...


class DriverTransport(ABC):
    """What a driver is handed to reach one device. All integers are
    host-order Python ints; the transport does any wire encoding.

    ``memory`` is a ring-core memory map (``device_ref.ring.memory.GuestMemory``)
    holding every guest region the driver may use, the device's bounce
    region included; the driver builds its driver-side rings on it.
    """

    memory: GuestMemory

    @abstractmethod
    def ram_ranges(self) -> list[tuple[int, int]]:
        """(base, size) of ordinary guest RAM in ``memory``: where a driver
        puts rings and buffers when VIRTIO_F_SWIOTLB is not negotiated."""

    @abstractmethod
    def device_id(self) -> int: ...

    @abstractmethod
    def num_queues(self) -> int: ...

    @abstractmethod
    def read_device_features(self) -> int: ...

    @abstractmethod
    def write_driver_features(self, features: int) -> None: ...

    @abstractmethod
    def read_status(self) -> int: ...

    @abstractmethod
    def write_status(self, status: int) -> None:
        """Write the device status; 0 resets the device."""

    @abstractmethod
    def config_generation(self) -> int: ...

    @abstractmethod
    def read_config(self, offset: int, length: int) -> bytes: ...

    @abstractmethod
    def write_config(self, offset: int, data: bytes) -> None: ...

    @abstractmethod
    def queue_max_size(self, queue: int) -> int: ...

    @abstractmethod
    def set_queue(self, queue: int, config: QueueConfig) -> None: ...

    @abstractmethod
    def enable_queue(self, queue: int) -> None: ...

    @abstractmethod
    def notify(self, queue: int) -> None:
        """Kick: tell the device new buffers are available on ``queue``."""

    @abstractmethod
    def take_interrupts(self) -> Interrupts:
        """Interrupts raised since the last call (non-blocking)."""

    @abstractmethod
    def wait_interrupts(self, timeout: float) -> Interrupts:
        """Block until at least one interrupt or ``timeout`` seconds pass."""

    @abstractmethod
    def bounce_description(self) -> BounceDescription | None:
        """How the device describes its SWIOTLB bounce region, if it has one."""

    def admin_queues(self) -> tuple[int, int] | None:
        """Where the administration virtqueues are (VIRTIO_F_ADMIN_VQ): the
        index of the first and how many (on PCI, admin_queue_index and
        admin_queue_num); None when the transport cannot say."""
        return None

    def pci_capabilities(self) -> list[bytes] | None:
        """The device's virtio structure capabilities as a PCI device lists
        them (raw ``virtio_pci_cap``/``virtio_pci_cap64`` bytes), or None
        when the transport is not PCI and has no such list."""
        return None

    def legacy_ring_align(self) -> int | None:
        """None, or the alignment of a legacy queue block: a transport that
        can only describe a split queue as one block (legacy virtio-mmio's
        QueuePFN) says so here, and the driver lays each queue out as the
        descriptor table at a multiple of it, the available ring right
        after, and the used ring at the next multiple."""
        return None

    def restart_queue_at(self, queue: int, index: int, rewrite: Callable[[], None]) -> bool:
        """Stop running queue ``queue``, let ``rewrite()`` put the driver's
        side of its rings at ``index``, and start it again there, as a VMM
        does after migrating a ring (vhost-user GET_VRING_BASE, then
        SET_VRING_BASE). False, with nothing done, where the transport
        cannot tell a device where a ring resumes (PCI, MMIO)."""
        return False

    def reset(self) -> None:
        """Reset the device and wait until it reports status 0."""
        self.write_status(0)
        if self.read_status() != 0:
            raise TransportError("device status did not return to 0 after reset")

    def close(self) -> None:
        """Release transport resources (sockets, memory)."""


class DeviceHost(Protocol):
    """What a transport gives a device so it can notify the driver."""

    def queue_interrupt(self, queue: int) -> None: ...

    def config_interrupt(self) -> None: ...


class DeviceBackend(ABC):
    """The device side of the contract; ``VirtioDevice`` implements it."""

    @abstractmethod
    def attach(self, host: DeviceHost) -> None:
        """Called once by the transport that hosts the device."""

    @abstractmethod
    def device_id(self) -> int: ...

    @abstractmethod
    def num_queues(self) -> int: ...

    @abstractmethod
    def queue_max_size(self, queue: int) -> int: ...

    @abstractmethod
    def device_features(self) -> int: ...

    @abstractmethod
    def set_driver_features(self, features: int) -> None: ...

    @abstractmethod
    def driver_features(self) -> int:
        """The features the driver wrote (negotiated once FEATURES_OK holds)."""

    @abstractmethod
    def read_status(self) -> int: ...

    @abstractmethod
    def write_status(self, status: int) -> None: ...

    @abstractmethod
    def config_generation(self) -> int: ...

    @abstractmethod
    def read_config(self, offset: int, length: int) -> bytes: ...

    @abstractmethod
    def write_config(self, offset: int, data: bytes) -> None: ...

    @abstractmethod
    def set_queue(self, queue: int, config: QueueConfig) -> None: ...

    @abstractmethod
    def enable_queue(self, queue: int) -> None: ...

    @abstractmethod
    def set_memory(self, memory: object) -> None:
        """The guest memory the device may access: a ring-core memory map."""

    @abstractmethod
    def notify(self, queue: int) -> None:
        """A kick: process what the driver made available on ``queue``."""

    @abstractmethod
    def bounce_region(self) -> BounceRegion | None:
        """The region this device carries for VIRTIO_F_SWIOTLB, if any."""
