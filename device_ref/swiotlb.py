"""Bounce-pool allocation for VIRTIO_F_SWIOTLB, and the same allocator for
ordinary guest RAM.

The pool hands out non-overlapping, aligned ranges of a guest-physical
region in whole slots. Why slots: they bound fragmentation. Every
allocation wastes less than one slot internally, free neighbours merge on
release so external fragmentation never outlives the allocations that
caused it, and first-fit over an address-ordered free list reuses freed
slots before untouched ones.

Exhaustion never overlaps: ``alloc`` either finds room, waits (when given a
timeout, for another thread to ``free``), or raises ``PoolExhausted``.
"""
from __future__ import annotations

import bisect
import threading
import time
from dataclasses import dataclass

from device_ref.transport import BounceRegion, GuestMemory

DEFAULT_SLOT = 64


class PoolError(Exception):
    """Misuse of a pool: double free, foreign address, bad size."""


class PoolExhausted(PoolError):
    """No run of free slots is large enough (after waiting, if asked to)."""


@dataclass(frozen=True)
class Allocation:
    """One allocated range: guest address, requested length, slots held."""
    addr: int
    length: int
    slots: int


class SlotAllocator:
    """First-fit allocator over ``[base, base+size)`` in units of ``slot`` bytes."""

    def __init__(self, base: int, size: int, slot: int = DEFAULT_SLOT) -> None:
        if slot <= 0 or slot & (slot - 1):
            raise PoolError(f"slot size {slot} is not a power of two")
        # Slots start at an aligned address so slot alignment is real alignment.
        first = -(-base // slot) * slot
        self.base = base
        self.size = size
        self.slot = slot
        self._origin = first
        self.total_slots = max(0, (base + size - first) // slot)
        self._free_starts: list[int] = [0] if self.total_slots else []
        self._free_len: dict[int, int] = {0: self.total_slots} if self.total_slots else {}
        self._used: dict[int, int] = {}  # slot index -> slots
        self._cond = threading.Condition()

    # -- queries -------------------------------------------------------
    @property
    def free_slots(self) -> int:
        return sum(self._free_len.values())

    @property
    def largest_free(self) -> int:
        return max(self._free_len.values(), default=0)

    @property
    def in_use(self) -> int:
        return len(self._used)

    def owns(self, addr: int, length: int) -> bool:
        return self.base <= addr and addr + length <= self.base + self.size

    # -- allocation ----------------------------------------------------
    def alloc(self, length: int, align: int = 1, timeout: float | None = None) -> Allocation:
        """Reserve ``length`` bytes aligned to ``align`` (a power of two).

        ``timeout`` None or 0: fail at once when full; otherwise wait up to
        that many seconds for frees.
        """
        if length <= 0:
            raise PoolError(f"allocation length must be positive, got {length}")
        if align <= 0 or align & (align - 1):
            raise PoolError(f"alignment {align} is not a power of two")
        nslots = -(-length // self.slot)
        # Alignment above the slot size is expressed as a slot-index stride.
        stride = max(1, align // self.slot)
        deadline = None if not timeout else time.monotonic() + timeout
        with self._cond:
            while True:
                start = self._find(nslots, stride)
                if start is not None:
                    self._take(start, nslots)
                    return Allocation(self._origin + start * self.slot, length, nslots)
                if deadline is None:
                    break
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._cond.wait(left)
        raise PoolExhausted(f"no {nslots * self.slot}-byte run free in the pool "
                            f"({self.free_slots} of {self.total_slots} slots free, "
                            f"largest run {self.largest_free})")

    def free(self, allocation: Allocation | int) -> None:
        addr = allocation if isinstance(allocation, int) else allocation.addr
        idx, rem = divmod(addr - self._origin, self.slot)
        with self._cond:
            n = self._used.pop(idx, None) if rem == 0 else None
            if n is None:
                raise PoolError(f"free of {addr:#x}: not an allocation of this pool")
            self._give(idx, n)
            self._cond.notify_all()

    def reset(self) -> None:
        """Forget every allocation (after a device reset the device holds none)."""
        with self._cond:
            self._used.clear()
            self._free_starts = [0] if self.total_slots else []
            self._free_len = {0: self.total_slots} if self.total_slots else {}
            self._cond.notify_all()

    # -- free list -----------------------------------------------------
    def _find(self, nslots: int, stride: int) -> int | None:
        for start in self._free_starts:
            run = self._free_len[start]
            aligned = start
            if stride > 1:
                aligned = -(-(start + self._origin // self.slot) // stride) * stride \
                    - self._origin // self.slot
            if aligned + nslots <= start + run:
                return aligned
        return None

    def _take(self, start: int, nslots: int) -> None:
        pos = bisect.bisect_right(self._free_starts, start) - 1
        run_start = self._free_starts[pos]
        run = self._free_len.pop(run_start)
        del self._free_starts[pos]
        before = start - run_start
        after = run_start + run - (start + nslots)
        if before:
            self._insert(run_start, before)
        if after:
            self._insert(start + nslots, after)
        self._used[start] = nslots

    def _insert(self, start: int, n: int) -> None:
        bisect.insort(self._free_starts, start)
        self._free_len[start] = n

    def _give(self, start: int, n: int) -> None:
        pos = bisect.bisect_left(self._free_starts, start)
        # Merge with the following run, then with the preceding one.
        if pos < len(self._free_starts) and self._free_starts[pos] == start + n:
            n += self._free_len.pop(self._free_starts.pop(pos))
        if pos > 0:
            prev = self._free_starts[pos - 1]
            if prev + self._free_len[prev] == start:
                self._free_len[prev] += n
                return
        self._insert(start, n)


class BouncePool(SlotAllocator):
    """The driver's allocator inside a device's SWIOTLB bounce region, with
    the copies in and out that bouncing means."""

    def __init__(self, region: BounceRegion, memory: GuestMemory,
                 slot: int = DEFAULT_SLOT) -> None:
        super().__init__(region.base, region.size, slot)
        self.region = region
        self.memory = memory

    def bounce_in(self, data: bytes, align: int = 1, timeout: float | None = None) -> Allocation:
        """Allocate a slot run and copy ``data`` into it (device-readable)."""
        a = self.alloc(len(data), align, timeout)
        self.memory.write(a.addr, data)
        return a

    def bounce_out(self, allocation: Allocation, length: int | None = None) -> bytes:
        """Copy back what the device wrote (device-writable)."""
        n = allocation.length if length is None else min(length, allocation.length)
        return self.memory.read(allocation.addr, n)
