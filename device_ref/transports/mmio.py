"""The virtio MMIO transport, driver side, over a register bus.

Version 2 is the current register layout (queue areas given as three 64-bit
addresses, QueueReady, ConfigGeneration). Version 1 is the legacy layout
QEMU still uses by default: the driver states its page size once
(GuestPageSize), a queue is one contiguous block (descriptor table,
available ring, then the used ring at the next QueueAlign boundary) given
as a page number (QueuePFN, non-zero activates the queue), only 32 feature
bits exist and there is no configuration generation counter.

Interrupts: the InterruptStatus register says "a used buffer" or "a
configuration change" without naming the queue; it is polled while the
machine runs and acknowledged through InterruptACK.
"""
from __future__ import annotations

from device_ref.transport import Interrupts, QueueConfig, TransportError
from device_ref import virtio_constants as R
from device_ref.transports.bus import RamWindow, RegisterBus
from device_ref.transports.register_transport import RegisterTransport

MMIO_SLOT_SIZE = 0x200


def legacy_block(size: int, align: int = R.MMIO_LEGACY_PAGE) -> tuple[int, int, int]:
    """(driver area offset, device area offset, total bytes) of a legacy
    split queue of ``size`` entries laid out from one aligned base."""
    avail = 16 * size
    used = -(-(avail + 6 + 2 * size) // align) * align
    return avail, used, used + 6 + 8 * size


def find_devices(bus: RegisterBus, base: int, slots: int) -> list[tuple[int, int, int]]:
    """(address, version, device id) of each virtio-mmio slot with a device
    behind it, among ``slots`` slots of 0x200 bytes from ``base``."""
    out = []
    for s in range(slots):
        addr = base + s * MMIO_SLOT_SIZE
        if bus.read(addr + R.MMIO["magic"], 4) != R.MMIO_MAGIC_VALUE:
            continue
        device_id = bus.read(addr + R.MMIO["device_id"], 4)
        if device_id:
            out.append((addr, bus.read(addr + R.MMIO["version"], 4), device_id))
    return out


class MmioTransport(RegisterTransport):
    kind = "mmio"

    def __init__(self, bus: RegisterBus, base: int, window: RamWindow) -> None:
        super().__init__(bus, window)
        self.base = base
        magic = self.reg_read("magic")
        if magic != R.MMIO_MAGIC_VALUE:
            raise TransportError(f"no virtio-mmio device at {base:#x} (magic {magic:#x})")
        self.version = self.reg_read("version")
        if self.version not in (1, 2):
            raise TransportError(f"virtio-mmio version {self.version} is neither 1 nor 2")
        self.legacy = self.version == 1
        self._device_id = self.reg_read("device_id")
        if self._device_id == 0:
            raise TransportError(f"virtio-mmio slot at {base:#x} has no device (id 0)")
        self._queues: dict[int, QueueConfig] = {}
        self.held = False

    def hold_interrupts(self) -> None:
        """Stop reading and acknowledging InterruptStatus while waiting, so
        a caller can look at the events the device keeps showing."""
        self.held = True

    def reg_read(self, name: str) -> int:
        return self.bus.read(self.base + R.MMIO[name], 4)

    def reg_write(self, name: str, value: int) -> None:
        self.bus.write(self.base + R.MMIO[name], 4, value)

    def legacy_ring_align(self) -> int | None:
        return R.MMIO_LEGACY_PAGE if self.legacy else None

    # -- interrupts --------------------------------------------------------
    def _poll_interrupts(self) -> Interrupts:
        if self.held:
            return Interrupts()
        status = self.reg_read("interrupt_status")
        got = Interrupts()
        if status:
            self.reg_write("interrupt_ack", status)
        if status & R.MMIO_INT_VRING:
            got.queues = self._each_enabled_queue()
        if status & R.MMIO_INT_CONFIG:
            got.config = 1
        return got

    # -- DriverTransport ---------------------------------------------------
    def device_id(self) -> int:
        return self._device_id

    def num_queues(self) -> int:
        """Queues are found by selecting each until QueueNumMax reads 0."""
        n = 0
        while n < 1024:
            self.reg_write("queue_sel", n)
            if self.reg_read("queue_num_max") == 0:
                break
            n += 1
        return n

    def _feature_words(self, features: int = 0) -> int:
        """How many 32-bit feature words to read or write. Only words 0 and 1
        exist today; a higher select is touched only for feature bits there,
        because QEMU 7.2 treats any select above 1 as 1 (reading repeats bits
        32-63, writing overwrites them; see docs/conformance.md)."""
        if self.legacy:
            return 1
        return max(2, -(-features.bit_length() // 32))

    def read_device_features(self) -> int:
        features = 0
        for sel in range(self._feature_words()):
            self.reg_write("device_features_sel", sel)
            features |= self.reg_read("device_features") << 32 * sel
        return features

    def write_driver_features(self, features: int) -> None:
        if self.legacy and features >> 32:
            raise TransportError("a legacy virtio-mmio device has only 32 feature bits")
        for sel in range(self._feature_words(features)):
            self.reg_write("driver_features_sel", sel)
            self.reg_write("driver_features", features >> 32 * sel & 0xFFFFFFFF)

    def read_status(self) -> int:
        return self.reg_read("status")

    def write_status(self, status: int) -> None:
        self.reg_write("status", status)
        if status == 0:
            self._enabled.clear()
            self._queues.clear()

    def config_generation(self) -> int:
        return 0 if self.legacy else self.reg_read("config_generation")

    def read_config(self, offset: int, length: int) -> bytes:
        if offset < 0 or length < 0:
            raise TransportError(f"configuration range {offset}+{length} is invalid")
        return self._read_block(self.base + R.MMIO_CONFIG, offset, length)

    def write_config(self, offset: int, data: bytes) -> None:
        if offset < 0:
            raise TransportError(f"configuration offset {offset} is invalid")
        self._write_block(self.base + R.MMIO_CONFIG, offset, data)

    def queue_max_size(self, queue: int) -> int:
        self.reg_write("queue_sel", queue)
        return self.reg_read("queue_num_max")

    def set_queue(self, queue: int, config: QueueConfig) -> None:
        self.reg_write("queue_sel", queue)
        self.reg_write("queue_num", config.size)
        if self.legacy:
            avail, used, _total = legacy_block(config.size)
            if (config.desc % R.MMIO_LEGACY_PAGE or config.driver != config.desc + avail
                    or config.device != config.desc + used):
                raise TransportError("a legacy virtio-mmio queue must be one page-aligned block "
                                     "(descriptors, available ring, used ring at the next page)")
            self.reg_write("guest_page_size", R.MMIO_LEGACY_PAGE)
            self.reg_write("queue_align", R.MMIO_LEGACY_PAGE)
            self._queues[queue] = config
            return
        for name, addr in (("desc", config.desc), ("driver", config.driver),
                           ("device", config.device)):
            self.reg_write(f"queue_{name}_low", addr & 0xFFFFFFFF)
            self.reg_write(f"queue_{name}_high", addr >> 32)

    def enable_queue(self, queue: int) -> None:
        self.reg_write("queue_sel", queue)
        if self.legacy:
            config = self._queues.get(queue)
            if config is None:
                raise TransportError(f"queue {queue} was not set up before being enabled")
            self.reg_write("queue_pfn", config.desc // R.MMIO_LEGACY_PAGE)
        else:
            self.reg_write("queue_ready", 1)
        self._enabled.add(queue)

    def reset_queue(self, queue: int) -> None:
        """Reset one queue (VIRTIO_F_RING_RESET): write 1 to QueueReset and
        wait until it reads 0 again."""
        if self.legacy:
            raise TransportError("a legacy virtio-mmio device has no QueueReset")
        self._reset_one_queue(queue, lambda q: self.reg_write("queue_sel", q),
                              lambda v: self.reg_write("queue_reset", v),
                              lambda: self.reg_read("queue_reset"))
        self._queues.pop(queue, None)

    def notify(self, queue: int) -> None:
        self.kicks += 1
        self.reg_write("queue_notify", queue)
        self.bus.let_run()

    def notify_data(self, queue: int, value: int) -> None:
        """A notification carrying data (VIRTIO_F_NOTIFICATION_DATA)."""
        self.kicks += 1
        self.reg_write("queue_notify", value)
        self.bus.let_run()
