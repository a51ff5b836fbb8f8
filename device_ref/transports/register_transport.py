"""What the PCI and MMIO transports share: guest RAM the host maps, the
register bus, and waiting for interrupts while the machine runs.

The first page of the RAM window is kept for interrupt observation (MSI-X
messages are pointed there, see ``pci.py``); the rest is the RAM the driver
allocates rings and buffers from.
"""
from __future__ import annotations

import time
from abc import abstractmethod

from device_ref.ring.memory import GuestMemory as MemoryMap
from device_ref.transport import BounceDescription, DriverTransport, Interrupts, TransportError
from device_ref.transports.bus import RamWindow, RegisterBus, read_block, write_block

MAILBOX_SIZE = 4096
POLL_FIRST = 0.0002     # seconds between interrupt polls at first ...
POLL_MAX = 0.005        # ... backing off to this


class RegisterTransport(DriverTransport):
    """A ``DriverTransport`` whose registers sit behind a ``RegisterBus``."""

    kind = "register"

    def __init__(self, bus: RegisterBus, window: RamWindow) -> None:
        if window.size <= 2 * MAILBOX_SIZE:
            raise TransportError(f"RAM window of {window.size} bytes is too small")
        self.bus = bus
        self.window = window
        self.memory = MemoryMap()
        self.memory.add_region(window.base, window.buffer)
        self.mailbox = window.base
        self.kicks = 0
        self._enabled: set[int] = set()

    # -- RAM ---------------------------------------------------------------
    def ram_ranges(self) -> list[tuple[int, int]]:
        return [(self.window.base + MAILBOX_SIZE, self.window.size - MAILBOX_SIZE)]

    def bounce_description(self) -> BounceDescription | None:
        return None

    # -- register helpers ---------------------------------------------------
    def _read_block(self, base: int, offset: int, length: int) -> bytes:
        return read_block(self.bus, base, offset, length)

    def _write_block(self, base: int, offset: int, data: bytes) -> None:
        write_block(self.bus, base, offset, data)

    def _reset_one_queue(self, queue: int, select, write_reset, read_reset) -> None:
        """Select ``queue``, write 1 to its reset register and wait until the
        register reads 0 again (the device's sign that the reset is done)."""
        select(queue)
        write_reset(1)
        for _ in range(1000):
            if read_reset() == 0:
                self._enabled.discard(queue)
                return
        raise TransportError(f"queue {queue} reset did not complete (the register stayed 1)")

    def legacy_ring_align(self) -> int | None:
        """Not None when queues must be laid out as one legacy block (see
        ``DriverTransport.legacy_ring_align``)."""
        return None

    # -- interrupts ---------------------------------------------------------
    @abstractmethod
    def _poll_interrupts(self) -> Interrupts:
        """Interrupts raised since the last poll, without waiting."""

    def _poll_needs_bus(self) -> bool:
        """True when polling reads registers (so it stops the machine)."""
        return True

    def take_interrupts(self) -> Interrupts:
        return self._poll_interrupts()

    def wait_interrupts(self, timeout: float) -> Interrupts:
        deadline = time.monotonic() + timeout
        pause = POLL_FIRST
        while True:
            self.bus.let_run()
            got = self._poll_interrupts()
            left = deadline - time.monotonic()
            if got or left <= 0:
                if self._poll_needs_bus():
                    self.bus.let_run()
                return got
            time.sleep(min(pause, left))
            pause = min(pause * 2, POLL_MAX)

    def _each_enabled_queue(self) -> dict[int, int]:
        """A used-buffer interrupt that does not say which queue: count it
        once on every enabled queue."""
        return {q: 1 for q in sorted(self._enabled)} or {0: 1}

    def close(self) -> None:
        self.memory = None  # type: ignore[assignment]
