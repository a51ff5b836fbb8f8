"""``ref``: the reference devices of ``device_ref``, in this process.

Every test gets a fresh device on an in-process transport. The harness owns
all guest memory here, so it can watch it: ``MemoryWatch`` compares guest
RAM before and after every call that lets the device act (a kick, a status
write, enabling a queue) and records each byte range the device changed
outside the bounce region. A device that bypasses its restricted map (the
fault-injection variants do, on purpose) can only get a wider map from
``wide_map()``, which logs every access it serves outside the region.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Callable

from device_ref.device.features import F_RING_RESET, F_SUSPEND, F_SWIOTLB, bit, has
from device_ref.device.device_queue import build_memory_map
from device_ref.devices.blk import BlkDevice, BlkOptions, MemoryStorage
from device_ref.devices.console import ConsoleDevice
from device_ref.devices.net import NetDevice
from device_ref.devices.rng import RngDevice
from device_ref.qenc import enable_device
from device_ref.ring.memory import GuestMemory
from device_ref.transport import BounceRegion
from device_ref.transport_inproc import InProcTransport

from conformance.adapters.base import (Adapter, AdapterError, AdapterOptions, DriverRig,
                                       PartialHost, Session, SetupError)

DEFAULT_BOUNCE = BounceRegion(0x8000_0000, 1 << 20)
RAM_SIZE = 2 << 20
DISK_SECTORS = 2048
RNG_SEED = 1234

DeviceFactory = Callable[[str, BounceRegion | None], object]


def reference_device(device_type: str, bounce: BounceRegion | None,
                     queue_encryption: bool = True, admin_queue: bool = True):
    """The unmodified reference device of a type, with queue encryption (unless
    told otherwise) and, since the in-process transports can reset one queue
    and carry every status write to the device, VIRTIO_F_RING_RESET and
    VIRTIO_F_SUSPEND. A block device also gets an administration virtqueue
    (VIRTIO_F_ADMIN_VQ, the self group) unless told otherwise: the in-process
    transport reports where it is; the register models do not."""
    if device_type == "blk":
        device = BlkDevice(MemoryStorage(DISK_SECTORS * 512), BlkOptions(), bounce=bounce)
        if admin_queue:
            device.add_admin_queue()
    elif device_type == "rng":
        device = RngDevice(seed=RNG_SEED, bounce=bounce)
    elif device_type in ("net", "console"):
        # no queue encryption: what comes back on the receive queue answers
        # no request that could carry a seal
        # (the console's output goes to a host end the session reads: ConsoleHost)
        device = (NetDevice(bounce=bounce) if device_type == "net"
                  else ConsoleDevice(bounce=bounce, echo=False))
        queue_encryption = False
    else:
        raise AdapterError(f"the reference devices are {', '.join(RefAdapter.device_types)}, "
                           f"not {device_type}")
    device.rules = replace(device.rules, offered=device.rules.offered | bit(F_RING_RESET)
                           | bit(F_SUSPEND))
    return enable_device(device).device if queue_encryption else device


def storage_resizer(device) -> Callable[[int], None] | None:
    """For a block device on memory storage: a function that changes its
    capacity (sectors) while it runs, as a configuration change."""
    if not isinstance(getattr(device, "storage", None), MemoryStorage):
        return None

    def resize(sectors: int) -> None:
        device.storage.grow(sectors * 512)
        device.resize(sectors)
    return resize


@dataclass
class Access:
    op: str        # read, write
    addr: int
    length: int


class LoggingMemory(GuestMemory):
    """A map of all guest memory that logs accesses outside ``allowed``."""

    def __init__(self, watch: "MemoryWatch") -> None:
        super().__init__()
        self.watch = watch

    def _log(self, op: str, gpa: int, length: int) -> None:
        w = self.watch
        if w.active and w.bounce is not None and not w.bounce.contains(gpa, length):
            w.outside.append(Access(op, gpa, length))

    def read(self, gpa: int, length: int) -> bytes:
        self._log("read", gpa, length)
        return super().read(gpa, length)

    def write(self, gpa: int, data) -> None:
        self._log("write", gpa, len(data))
        super().write(gpa, data)

    def translate(self, gpa: int, length: int) -> memoryview:
        self._log("access", gpa, length)
        return super().translate(gpa, length)


@dataclass
class MemoryWatch:
    """What the device did to guest RAM outside its bounce region."""
    ram: list = field(default_factory=list)        # guest_ram.Region of kind "ram"
    bounce: BounceRegion | None = None
    active: bool = False                           # SWIOTLB negotiated
    changed: list[tuple[int, int, str]] = field(default_factory=list)  # addr, len, during
    outside: list[Access] = field(default_factory=list)

    # copies of RAM kept from one window to the next: a fresh 2 MiB buffer
    # per window costs more in page faults than the copy itself
    spare: list[list[bytearray]] = field(default_factory=list)

    def snapshot(self) -> list[bytearray] | None:
        if not self.active:
            return None
        copies = self.spare.pop() if self.spare else [bytearray(r.size) for r in self.ram]
        for r, copy in zip(self.ram, copies):
            copy[:] = r.buffer.view
        return copies

    def compare(self, before: list[bytearray] | None, during: str) -> None:
        if before is None:
            return
        for r, old in zip(self.ram, before):
            if old != r.buffer.view:        # one memcmp, no copy
                new = bytes(r.buffer.view)
                first = next(i for i in range(len(old)) if old[i] != new[i])
                last = next(i for i in range(len(old) - 1, -1, -1) if old[i] != new[i])
                self.changed.append((r.base + first, last - first + 1, during))
        self.spare.append(before)

    def violations(self) -> list[str]:
        out = [f"{n} byte(s) changed at {a:#x} during {d}" for a, n, d in self.changed]
        out += [f"device {x.op} of {x.length} byte(s) at {x.addr:#x}" for x in self.outside]
        return out


class WatchedTransport(InProcTransport):
    """The in-process transport with a memory watch around device activity."""

    def __init__(self, device, ram_size: int = RAM_SIZE, bounce_style: str = "pci") -> None:
        super().__init__(device, ram_size=ram_size, bounce_style=bounce_style)
        self.watch = MemoryWatch(ram=[r for r in self.ram.regions if r.kind == "ram"],
                                 bounce=self.bounce)

    def wide_map(self) -> LoggingMemory:
        """Every guest region, logged: what a device that ignores SWIOTLB would use."""
        m = LoggingMemory(self.watch)
        for r in self.ram.regions:
            m.add_region(r.base, r.buffer.view)
        return m

    def _window(self, during: str, fn, *args):
        snap = self.watch.snapshot()
        try:
            return fn(*args)
        finally:
            self.watch.compare(snap, during)

    def notify(self, queue: int) -> None:
        self._window(f"the kick of queue {queue}", super().notify, queue)

    def write_status(self, status: int) -> None:
        self._window(f"the status write {status:#x}", super().write_status, status)
        self.watch.active = bool(self.bounce is not None
                                 and has(self.device.driver_features(), F_SWIOTLB)
                                 and self.device.read_status() & 8)

    def enable_queue(self, queue: int) -> None:
        self._window(f"enabling queue {queue}", super().enable_queue, queue)


class ConsoleHost(PartialHost):
    """The host end of the reference console's port 0: what the driver
    output, and input typed for it. The other outside events belong to
    device types the reference devices do not have."""

    owner = "the reference console"

    def __init__(self, device: ConsoleDevice) -> None:
        self.device = device

    def console_write(self, data: bytes) -> None:
        self.device.host_input(data)

    def console_read(self) -> bytes:
        out = bytes(self.device.host_output)
        self.device.host_output.clear()
        return out


class RefAdapter(Adapter):
    name = "ref"
    device_types = ("blk", "rng", "net", "console")

    def __init__(self, opts: AdapterOptions, swiotlb: bool = True,
                 factory: DeviceFactory = reference_device, label: str = "ref") -> None:
        if opts.device_type is not None and opts.device_type not in self.device_types:
            raise SetupError(f"{label}: the reference devices are {', '.join(self.device_types)}"
                             f", not {opts.device_type}")
        self.opts = opts
        self.swiotlb = swiotlb
        self.factory = factory
        self.name = label
        self.bounce = (opts.bounce or DEFAULT_BOUNCE) if swiotlb else None

    @classmethod
    def from_spec(cls, rest: str, opts: AdapterOptions) -> "RefAdapter":
        swiotlb, transport = True, "pci"
        for item in filter(None, rest.split(",")):
            key, _, value = item.partition("=")
            if key == "swiotlb" and value in ("on", "off"):
                swiotlb = value == "on"
            elif key == "transport" and value in ("pci", "mmio"):
                transport = value
            else:
                raise AdapterError(f"unknown ref option {item!r} (known: swiotlb=on|off, "
                                   f"transport=pci|mmio)")
        adapter = cls(opts, swiotlb=swiotlb, label=f"ref:{rest}" if rest else "ref")
        adapter.transport = transport
        return adapter

    transport = "pci"    # how the bounce region is described: PCI capability or MMIO platform

    def open(self, device_type: str | None) -> Session:
        dtype = device_type or self.opts.device_type or "blk"
        device = self.factory(dtype, self.bounce)
        t = WatchedTransport(device, bounce_style=self.transport)
        hook = getattr(device, "use_harness", None)
        if hook is not None:
            hook(t)     # fault-injection variants reach the wider map through this
        expected_id = None
        if dtype == "blk":
            serial = getattr(getattr(device, "opts", None), "serial", None)
            expected_id = serial
        resize = storage_resizer(device) if dtype == "blk" else None
        host = ConsoleHost(device) if isinstance(device, ConsoleDevice) and not device.echo \
            else None
        return Session(transport=t, device_type=dtype, transport_kind=self.transport,
                       resize=resize,
                       bounce=self.bounce, watch=t.watch, expected_id=expected_id,
                       note="in-process reference device",
                       synchronous=True, host=host)

    def describe(self) -> str:
        return self.name

    def driver_rig(self) -> DriverRig | None:
        if self.factory is not reference_device:
            return None     # a fault-injected device does not judge drivers
        return DriverRig(self.bounce, self.opts.device_type)

