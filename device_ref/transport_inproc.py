"""The in-process transport: driver and device in one Python process.

The transport owns guest memory (guarded regions, see ``guest_ram.py``):
ordinary RAM, and the device's bounce region when it carries one. It hands
the device a ring-core memory map when the driver sets FEATURES_OK: with
VIRTIO_F_SWIOTLB negotiated that map holds only the bounce region, so any
descriptor pointing elsewhere fails the map's bounds check; without it the
map holds RAM only.

Kicks are processed synchronously inside ``notify`` by default; with
``threaded=True`` a worker thread processes them, as a device in another
process would.
"""
from __future__ import annotations

import queue as queue_mod
import threading
import weakref

from device_ref.device.device_queue import build_memory_map
from device_ref.device.features import F_SWIOTLB, FEATURES_OK, has
from device_ref.guest_ram import GuestRam
from device_ref.transport import (BounceDescription, DeviceBackend, DriverTransport,
                                  Interrupts, MmioBounceDescription, PciBounceDescription,
                                  PciCap64, QueueConfig, TransportError,
                                  VIRTIO_PCI_CAP_SWIOTLB_CFG)

RAM_BASE = 0x1000_0000
DEFAULT_RAM = 8 << 20
PCI_BOUNCE_BAR = 2
PCI_BOUNCE_OFFSET = 0x1000  # the region sits at an offset in its BAR, as a real one may
PCI_DEVICE_CFG_BAR = 4         # where this model says the device-specific configuration
PCI_DEVICE_CFG_OFFSET = 0x2000  # space sits (as QEMU's modern layout puts it)


class _Host:
    """DeviceHost for the in-process transport: interrupts land in a list."""

    def __init__(self) -> None:
        self.cond = threading.Condition()
        self.pending = Interrupts()
        self.total = Interrupts()

    def queue_interrupt(self, queue: int) -> None:
        with self.cond:
            self.pending.queues[queue] = self.pending.queues.get(queue, 0) + 1
            self.total.queues[queue] = self.total.queues.get(queue, 0) + 1
            self.cond.notify_all()

    def config_interrupt(self) -> None:
        with self.cond:
            self.pending.config += 1
            self.total.config += 1
            self.cond.notify_all()


class InProcTransport(DriverTransport):
    def __init__(self, device: DeviceBackend, ram_size: int = DEFAULT_RAM,
                 bounce_style: str = "pci", threaded: bool = False) -> None:
        if bounce_style not in ("pci", "mmio"):
            raise TransportError(f"bounce_style must be 'pci' or 'mmio', not {bounce_style!r}")
        self.device = device
        self.ram = GuestRam()
        self.ram.add(RAM_BASE, ram_size, "ram")
        self.bounce = device.bounce_region()
        if self.bounce is not None:
            self.ram.add(self.bounce.base, self.bounce.size, "bounce")
        # The driver reaches everything; the device gets a narrower map.
        self.memory = build_memory_map(self.ram.regions)
        self.bounce_style = bounce_style
        self.host = _Host()
        self.kicks = 0
        self._lock = threading.RLock()
        device.attach(self.host)
        self._drivers: list[weakref.ref] = []   # see close()
        self._work: queue_mod.Queue[int | None] | None = None
        self._thread: threading.Thread | None = None
        if threaded:
            self._work = queue_mod.Queue()
            self._thread = threading.Thread(target=self._worker, name="inproc-device",
                                            daemon=True)
            self._thread.start()

    # -- device worker --------------------------------------------------
    def _worker(self) -> None:
        assert self._work is not None
        while True:
            q = self._work.get()
            if q is None:
                return
            with self._lock:
                self.device.notify(q)

    def close(self) -> None:
        if self._thread is not None and self._work is not None:
            self._work.put(None)
            self._thread.join(timeout=5)
            self._thread = None
        with self._lock:
            # Drop the device's rings and map, and those of the drivers on
            # this transport, now and deterministically: ring-core objects
            # left to the cyclic garbage collector can crash it.
            self.device.write_status(0)
            self.device.set_memory(None)
        for ref in self._drivers:
            drv = ref()
            if drv is not None:
                drv.transport_closed()
        self._drivers.clear()
        self.memory = None  # type: ignore[assignment]  # drop views before unmapping
        self.ram.close()

    def register_driver(self, driver: object) -> None:
        """Let ``close()`` tell a driver to drop its rings (held weakly)."""
        self._drivers.append(weakref.ref(driver))

    # -- DriverTransport --------------------------------------------------
    def device_id(self) -> int:
        return self.device.device_id()

    def ram_ranges(self) -> list[tuple[int, int]]:
        return self.ram.ram()

    def num_queues(self) -> int:
        return self.device.num_queues()

    def admin_queues(self) -> tuple[int, int] | None:
        """Read from the device, as a PCI driver reads admin_queue_index and
        admin_queue_num (count 0 until VIRTIO_F_ADMIN_VQ is negotiated)."""
        where = getattr(self.device, "admin_queues", None)
        return where() if where is not None else (0, 0)

    def read_device_features(self) -> int:
        with self._lock:
            return self.device.device_features()

    def write_driver_features(self, features: int) -> None:
        with self._lock:
            self.device.set_driver_features(features)

    def read_status(self) -> int:
        with self._lock:
            return self.device.read_status()

    def write_status(self, status: int) -> None:
        with self._lock:
            before = self.device.read_status()
            self.device.write_status(status)
            after = self.device.read_status()
            if after & FEATURES_OK and not before & FEATURES_OK:
                self.device.set_memory(self._device_map())
            if status == 0:
                with self.host.cond:
                    self.host.pending = Interrupts()

    def _device_map(self) -> object:
        """What the device may reach under the features just negotiated."""
        if has(self.device.driver_features(), F_SWIOTLB) and self.bounce is not None:
            kinds = ("bounce",)
        else:
            kinds = ("ram",)
        return build_memory_map([r for r in self.ram.regions if r.kind in kinds])

    def config_generation(self) -> int:
        with self._lock:
            return self.device.config_generation()

    def read_config(self, offset: int, length: int) -> bytes:
        with self._lock:
            return self.device.read_config(offset, length)

    def write_config(self, offset: int, data: bytes) -> None:
        with self._lock:
            self.device.write_config(offset, data)

    def queue_max_size(self, queue: int) -> int:
        return self.device.queue_max_size(queue)

    def set_queue(self, queue: int, config: QueueConfig) -> None:
        with self._lock:
            self.device.set_queue(queue, config)

    def enable_queue(self, queue: int) -> None:
        with self._lock:
            self.device.enable_queue(queue)

    def reset_queue(self, queue: int) -> None:
        """Reset one queue alone (VIRTIO_F_RING_RESET; on PCI, the driver
        writing 1 to queue_reset). Raises TransportError when the feature
        was not negotiated."""
        with self._lock:
            self.device.reset_queue(queue)

    def notify(self, queue: int) -> None:
        self.kicks += 1
        if self._work is not None:
            self._work.put(queue)
            return
        with self._lock:
            self.device.notify(queue)

    def take_interrupts(self) -> Interrupts:
        with self.host.cond:
            got, self.host.pending = self.host.pending, Interrupts()
            return got

    def wait_interrupts(self, timeout: float) -> Interrupts:
        with self.host.cond:
            if not self.host.pending:
                self.host.cond.wait(timeout)
            got, self.host.pending = self.host.pending, Interrupts()
            return got

    def pci_capabilities(self) -> list[bytes] | None:
        """In the PCI style: the SWIOTLB capability when there is a bounce
        region, and a structure capability for each register block the
        device keeps in its configuration space (queue encryption), placed
        where this model maps that space: BAR 4 at offset 0x2000."""
        if self.bounce_style != "pci":
            return None
        caps = []
        desc = self.bounce_description()
        if desc is not None:
            caps.append(desc.cap)
        structures = getattr(self.device, "pci_structures", None)
        for cfg_type, offset, length in (structures() if structures is not None else ()):
            caps.append(PciCap64(cfg_type=cfg_type, bar=PCI_DEVICE_CFG_BAR,
                                 offset=PCI_DEVICE_CFG_OFFSET + offset,
                                 length=length).encode(narrow=True))
        return caps

    def bounce_description(self) -> BounceDescription | None:
        if self.bounce is None:
            return None
        if self.bounce_style == "mmio":
            return MmioBounceDescription(self.bounce.base, self.bounce.size)
        bar_base = self.bounce.base - PCI_BOUNCE_OFFSET
        cap = PciCap64(cfg_type=VIRTIO_PCI_CAP_SWIOTLB_CFG, bar=PCI_BOUNCE_BAR,
                       offset=PCI_BOUNCE_OFFSET, length=self.bounce.size)
        return PciBounceDescription(cap.encode(), {PCI_BOUNCE_BAR: bar_base},
                                    {PCI_BOUNCE_BAR: PCI_BOUNCE_OFFSET + self.bounce.size})
