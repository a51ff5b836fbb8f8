"""The public queue objects: one interface over either backend."""
from __future__ import annotations

from typing import Sequence

from .backend import make_core
from .batch import POPPED, Chain, ChainBatch, PopBatch, PushBatch, UsedBatch
from .errors import RingError, RingErrorCode
from .layout import QueueConfig
from .memory import GuestMemory


class DriverQueue:
    """Driver side of one virtqueue: adds buffers, decides notifications, collects used buffers.

    Tokens are integers (0 .. 2**64-1) the caller picks; collect returns them.
    """

    def __init__(self, mem: GuestMemory, cfg: QueueConfig, *, backend: str | None = None) -> None:
        self.mem = mem
        self.cfg = cfg
        self.backend, self._core = make_core("driver", mem, cfg, None, backend)
        self._one = ChainBatch(1, cfg.size)
        self._used = UsedBatch(cfg.size)
        # the batch calls go straight to the backend: no extra Python frame per batch
        self.add_batch = self._core.add_batch
        self.collect_batch = self._core.collect_batch

    def add(self, out: Sequence[tuple[int, int]], in_: Sequence[tuple[int, int]], token: int,
            *, indirect: int = 0) -> bool:
        """Make one buffer available; returns True if the device should be notified.

        `out` are device-readable (gpa, len) segments, `in_` device-writable ones.
        With `indirect` (a guest address with room for 16 bytes per segment, and
        VIRTIO_F_INDIRECT_DESC negotiated) the segments go in an indirect table.
        Raises RingError(QUEUE_FULL) when the ring has no room.
        """
        b = self._one
        b.clear()
        b.append(out, in_, token, indirect)
        return self._core.add_batch(b)[1]

    def add_batch(self, batch: ChainBatch) -> tuple[int, bool]:
        """Make the chains of `batch` available, in order, until the ring is full.

        Returns (chains added, notify?).  One notification decision per batch.
        """
        return self._core.add_batch(batch)

    def collect(self) -> list[tuple[int, int]]:
        """All used buffers the device has returned, as (token, used length)."""
        out: list[tuple[int, int]] = []
        while True:
            n = self._core.collect_batch(self._used)
            out.extend(self._used.items())
            if n < self._used.max_entries:
                return out

    def collect_batch(self, out: UsedBatch) -> int:
        """Fill `out` with up to out.max_entries used buffers; returns how many."""
        return self._core.collect_batch(out)

    def enable_interrupts(self) -> bool:
        """Ask for used-buffer notifications; True if used buffers are already waiting."""
        return self._core.enable_interrupts()

    def disable_interrupts(self) -> None:
        self._core.disable_interrupts()

    @property
    def num_free(self) -> int:
        """Free descriptors in the ring."""
        return self._core.num_free

    @property
    def outstanding(self) -> int:
        """Buffers made available and not yet collected."""
        return self._core.outstanding

    @property
    def error(self) -> RingErrorCode | None:
        """The error that broke this queue (hostile device), or None."""
        return RingErrorCode(self._core.error) if self._core.error else None


class DeviceQueue:
    """Device side of one virtqueue: pops available chains, pushes used buffers.

    `start` is the vhost-user style base: split, the next available index;
    packed, the next available index with the wrap counter in bit 15.
    """

    def __init__(self, mem: GuestMemory, cfg: QueueConfig, *, start: int | None = None,
                 backend: str | None = None) -> None:
        self.mem = mem
        self.cfg = cfg
        self.backend, self._core = make_core("device", mem, cfg, start, backend)
        self._one = PopBatch(1, cfg.size)
        self._push_one = PushBatch([(0, 0)])
        self.pop_batch = self._core.pop_batch
        self.push_batch = self._core.push_batch

    def pop(self) -> Chain | None:
        """The next available chain, or None.  Raises RingError for a malformed ring."""
        if self._core.pop_batch(self._one) == 0:
            return None
        return self._one.chain_list()[0]

    def pop_batch(self, batch: PopBatch) -> int:
        """Pop up to batch.max_chains chains into `batch`; returns how many."""
        return self._core.pop_batch(batch)

    def push(self, id: int, written: int) -> bool:
        """Return buffer `id` with `written` bytes; True if the driver should be interrupted."""
        b = self._push_one
        POPPED.pack_into(b.chains, 0, id, 0, 0, written)
        return self._core.push_batch(b, False, False)

    def push_many(self, items: Sequence[tuple[int, int]], *, coalesce: bool = False) -> bool:
        """Return several (id, written) buffers with one interrupt decision.

        With `coalesce` (needs IN_ORDER) one used entry stands for the whole batch.
        """
        return self._core.push_batch(PushBatch(items), False, coalesce)

    def push_batch(self, batch: PopBatch | PushBatch, *, fill: bool = False,
                   coalesce: bool = False) -> bool:
        """Return every chain of `batch` with its written length (set_written),
        or with its full writable length when `fill`."""
        return self._core.push_batch(batch, fill, coalesce)

    def read_chain(self, chain: Chain) -> bytes:
        """The device-readable bytes of `chain`, through the memory map."""
        return b"".join(self.mem.read(s.gpa, s.len) for s in chain.segments if not s.writable)

    def write_chain(self, chain: Chain, data: bytes) -> int:
        """Scatter `data` over the writable segments; returns bytes written."""
        done = 0
        view = memoryview(data)
        for s in chain.segments:
            if not s.writable or done >= len(view):
                continue
            n = min(s.len, len(view) - done)
            self.mem.write(s.gpa, view[done:done + n])
            done += n
        if done < len(view):
            raise RingError(RingErrorCode.BAD_REQUEST, f"{len(view)} bytes do not fit in {chain.writable_len}")
        return done

    def enable_notifications(self) -> bool:
        """Ask for available-buffer notifications; True if buffers are already waiting."""
        return self._core.enable_notifications()

    def disable_notifications(self) -> None:
        self._core.disable_notifications()

    @property
    def state(self) -> int:
        """Where the device will pop next (vhost-user GET_VRING_BASE value)."""
        return self._core.state

    @property
    def in_flight(self) -> int:
        return self._core.in_flight

    @property
    def error(self) -> RingErrorCode | None:
        """The error that broke this queue (hostile driver: set NEEDS_RESET), or None."""
        return RingErrorCode(self._core.error) if self._core.error else None
