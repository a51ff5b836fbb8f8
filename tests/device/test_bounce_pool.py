"""The SWIOTLB bounce-pool allocator: no overlap, reuse, bounded waste."""
import threading
import time

import pytest
from hypothesis import given, settings, strategies as st

from device_ref.swiotlb import BouncePool, PoolError, PoolExhausted, SlotAllocator
from device_ref.transport import BounceRegion

BASE = 0x8000_1000
SIZE = 64 * 1024


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(st.booleans(), st.integers(1, 5000), st.sampled_from([1, 2, 16, 64, 256, 4096])),
                max_size=80))
def test_random_alloc_free_never_overlaps_and_stays_inside(ops):
    pool = SlotAllocator(BASE, SIZE, slot=64)
    live = []
    for is_free, length, align in ops:
        if is_free and live:
            pool.free(live.pop(length % len(live)))
            continue
        try:
            a = pool.alloc(length, align)
        except PoolExhausted:
            # Exhaustion is only allowed when no free run could hold it.
            assert pool.largest_free * 64 < length + max(align, 64)
            continue
        assert BASE <= a.addr and a.addr + length <= BASE + SIZE
        assert a.addr % align == 0
        assert a.slots * 64 - length < 64  # internal waste below one slot
        for b in live:
            assert a.addr + a.slots * 64 <= b.addr or b.addr + b.slots * 64 <= a.addr
        live.append(a)
    for a in live:
        pool.free(a)
    # Everything merged back: one run, the whole pool.
    assert pool.free_slots == pool.total_slots == pool.largest_free == SIZE // 64


def test_freed_slots_are_reused_first():
    pool = SlotAllocator(BASE, SIZE, slot=64)
    a = pool.alloc(100)
    pool.alloc(100)
    pool.free(a)
    assert pool.alloc(64).addr == a.addr


def test_exhaustion_raises_clear_error():
    pool = SlotAllocator(BASE, 1024, slot=64)
    pool.alloc(1024)
    with pytest.raises(PoolExhausted, match="no 64-byte run free"):
        pool.alloc(1)


def test_exhaustion_waits_for_a_free():
    pool = SlotAllocator(BASE, 1024, slot=64)
    a = pool.alloc(1024)
    threading.Timer(0.05, pool.free, (a,)).start()
    t0 = time.monotonic()
    b = pool.alloc(512, timeout=2.0)
    assert b.addr == BASE and time.monotonic() - t0 < 1.5


def test_double_free_and_foreign_free_are_errors():
    pool = SlotAllocator(BASE, 1024, slot=64)
    a = pool.alloc(10)
    pool.free(a)
    with pytest.raises(PoolError):
        pool.free(a)
    with pytest.raises(PoolError):
        pool.free(BASE + 3)


def test_bounce_pool_copies_in_and_out():
    mem = {}

    class Mem:
        def read(self, addr, n):
            return bytes(mem.get(addr + i, 0) for i in range(n))

        def write(self, addr, data):
            for i, b in enumerate(data):
                mem[addr + i] = b

        def ram(self):
            return []

    pool = BouncePool(BounceRegion(BASE, 4096), Mem())
    a = pool.bounce_in(b"hello")
    assert BASE <= a.addr < BASE + 4096
    assert pool.bounce_out(a) == b"hello"
    assert pool.bounce_out(a, 2) == b"he"
