"""``HQueue.add_uniform`` (many chains of one shape in one write) leaves a
split ring exactly as ``add_chain`` called once per chain does; ``rebase``
puts an idle ring at any index; the completion order is kept as counters."""
from __future__ import annotations

import struct

import pytest

from device_ref.ring.hostile import Desc, HQueue, QueueFull
from device_ref.ring.layout import DESC_F_NEXT, DESC_F_WRITE, SPLIT, QueueConfig
from device_ref.ring.memory import GuestMemory

SIZE = 16
DESC, DRIVER, DEVICE = 0x1000, 0x2000, 0x3000
# header (readable), data (writable), status (writable): a blk read
SHAPE = [(0, 16, 0), (16, 512, DESC_F_WRITE), (528, 1, DESC_F_WRITE)]
STRIDE = 529


def _queue() -> tuple[GuestMemory, HQueue]:
    mem = GuestMemory()
    mem.add_region(0, bytearray(1 << 16))
    return mem, HQueue(mem, QueueConfig(SPLIT, SIZE, DESC, DRIVER, DEVICE), 0)


def _rings(mem: GuestMemory) -> tuple[bytes, bytes]:
    return mem.read(DESC, 16 * SIZE), mem.read(DRIVER, 4 + 2 * SIZE)


def _use_all(mem: GuestMemory, q: HQueue) -> None:
    """The device uses every buffer in flight, in order, with length 1."""
    idx = struct.unpack_from("<H", mem.read(DEVICE + 2, 2))[0]
    for buf in list(q.inflight.values()):
        mem.write(DEVICE + 4 + 8 * (idx % SIZE), struct.pack("<II", buf.id, 1))
        idx = (idx + 1) & 0xFFFF
    mem.write(DEVICE + 2, struct.pack("<H", idx))


@pytest.mark.parametrize("before", [0, 2, 4], ids=lambda n: f"{n}-chains-before")
def test_uniform_chains_are_written_as_one_chain_at_a_time_writes_them(before):
    # 2 + 4 chains of 3 descriptors on 16 slots: the second batch wraps the table
    a_mem, a = _queue()
    b_mem, b = _queue()
    tokens = iter(range(100))
    for q, mem in ((a, a_mem), (b, b_mem)):
        for i in range(before):
            q.add_chain([Desc(0x8000 + i * STRIDE + o, n, f | (DESC_F_NEXT if j < 2 else 0), -1 if j < 2 else 0)
                         for j, (o, n, f) in enumerate(SHAPE)], 1000 + i, 513)
        _use_all(mem, q)
        q.collect()
    base = 0x9000
    toks = [next(tokens) for _ in range(4)]
    for i, t in enumerate(toks):
        a.add_chain([Desc(base + i * STRIDE + o, n, f | (DESC_F_NEXT if j < 2 else 0),
                          -1 if j < 2 else 0) for j, (o, n, f) in enumerate(SHAPE)], t, 513)
    b.add_uniform(base, STRIDE, SHAPE, toks, 513)
    assert _rings(a_mem) == _rings(b_mem)
    assert [(x.id, x.token, x.slots, x.writable_len, x.seq) for x in a.inflight.values()] == \
        [(x.id, x.token, x.slots, x.writable_len, x.seq) for x in b.inflight.values()]
    assert (a.next_slot, a.avail_idx, a.free_slots, a.split_written) == \
        (b.next_slot, b.avail_idx, b.free_slots, b.split_written)
    _use_all(b_mem, b)
    assert [u.token for u in b.collect()] == toks


def test_uniform_chains_that_do_not_fit_write_nothing():
    mem, q = _queue()
    before = _rings(mem)
    with pytest.raises(QueueFull):
        q.add_uniform(0x9000, STRIDE, SHAPE, list(range(6)), 513)    # 18 slots of 16
    assert _rings(mem) == before and not q.inflight


def test_rebase_puts_an_idle_ring_at_any_index_and_it_goes_round_from_there():
    mem, q = _queue()
    q.rebase(0xFFFE)
    assert mem.read(DRIVER + 2, 2) == mem.read(DEVICE + 2, 2) == struct.pack("<H", 0xFFFE)
    q.add_uniform(0x9000, STRIDE, SHAPE, [1, 2, 3, 4], 513)
    assert q.avail_idx == 2          # 0xFFFE + 4, modulo 2^16
    _use_all(mem, q)
    assert [u.token for u in q.collect()] == [1, 2, 3, 4] and q.last_used == 2


def test_completion_order_is_kept_as_counters():
    mem, q = _queue()
    q.add_uniform(0x9000, STRIDE, SHAPE, [1, 2, 3], 513)
    heads = [b.id for b in q.inflight.values()]
    # the device uses the second buffer first, then the others
    for k, head in enumerate([heads[1], heads[0], heads[2]]):
        mem.write(DEVICE + 4 + 8 * k, struct.pack("<II", head, 1))
    mem.write(DEVICE + 2, struct.pack("<H", 3))
    q.collect()
    assert q.used_count == 3 and q.order_break == (1, 0)    # seq 0 used after seq 1
