"""Split virtqueue: ring contents field by field, as the split layout rules say.

Layout (queue size 4, areas placed from 0x100000):
descriptor table at 0x100000, 16 bytes each: le64 addr, le32 len, le16 flags, le16 next;
available ring at 0x100040: le16 flags, le16 idx, le16 ring[4], le16 used_event;
used ring at 0x100050 (aligned to 4): le16 flags, le16 idx, {le32 id, le32 len}[4], le16 avail_event.
Flags: NEXT=1, WRITE=2, INDIRECT=4; avail NO_INTERRUPT=1; used NO_NOTIFY=1.
"""
from __future__ import annotations

import pytest

from device_ref.ring import RingError, RingErrorCode, Segment, place_rings, ring_areas

from .rig import BASE, make_rig

DESC, AVAIL, USED = 0x100000, 0x100040, 0x100050


def test_area_sizes_and_placement():
    a = ring_areas("split", 4)
    assert (a.desc.size, a.desc.align) == (64, 16)
    assert (a.driver.size, a.driver.align) == (6 + 2 * 4, 2)
    assert (a.device.size, a.device.align) == (6 + 8 * 4, 4)
    cfg = place_rings("split", 4, 0x100000)
    assert (cfg.desc, cfg.driver, cfg.device) == (DESC, AVAIL, USED)
    big = ring_areas("split", 256)
    assert (big.desc.size, big.driver.size, big.device.size) == (4096, 518, 2054)


def test_bad_sizes_rejected():
    for size in (0, 3, 6, 65536):
        with pytest.raises(RingError) as e:
            ring_areas("split", size)
        assert e.value.code == RingErrorCode.BAD_CONFIG


def test_add_pop_push_collect_fields(backend):
    r = make_rig(backend, "split")
    notify = r.drv.add([(0x101000, 0x10)], [(0x102000, 0x20), (0x103000, 0x30)], token=99)
    assert notify is True  # used.flags is 0: the device wants notifications
    # chain in descriptors 0 -> 1 -> 2 (free descriptors are handed out in table order)
    assert r.split_desc(0) == (0x101000, 0x10, 1, 1)        # NEXT
    assert r.split_desc(1) == (0x102000, 0x20, 1 | 2, 2)    # NEXT | WRITE
    assert r.split_desc(2) == (0x103000, 0x30, 2, 0)        # WRITE, end of chain
    assert r.u16(AVAIL) == 0            # flags
    assert r.u16(AVAIL + 2) == 1        # idx
    assert r.u16(AVAIL + 4) == 0        # ring[0] = head 0
    assert r.drv.num_free == 1 and r.drv.outstanding == 1

    chain = r.dev.pop()
    assert chain.id == 0
    assert chain.segments == (Segment(0x101000, 0x10, False), Segment(0x102000, 0x20, True),
                              Segment(0x103000, 0x30, True))
    assert chain.writable_len == 0x50 and chain.readable_len == 0x10
    assert r.dev.pop() is None

    assert r.dev.push(0, 0x25) is True  # avail.flags is 0: the driver wants interrupts
    assert r.u32(USED + 4) == 0         # ring[0].id
    assert r.u32(USED + 8) == 0x25      # ring[0].len
    assert r.u16(USED + 2) == 1         # idx
    assert r.drv.collect() == [(99, 0x25)]
    assert r.drv.num_free == 4 and r.drv.outstanding == 0


def test_freed_descriptors_are_reused_in_fifo_order(backend):
    r = make_rig(backend, "split")
    r.drv.add([(0x101000, 8)], [(0x102000, 8), (0x103000, 8)], token=1)   # descs 0,1,2
    r.dev.push(r.dev.pop().id, 0)
    r.drv.collect()
    r.drv.add([(0x104000, 4)], [(0x105000, 4)], token=2)   # free list is 3, 0, 1, 2
    assert r.split_desc(3) == (0x104000, 4, 1, 0)          # head 3, next 0
    assert r.split_desc(0) == (0x105000, 4, 2, 0)
    assert r.u16(AVAIL + 2) == 2 and r.u16(AVAIL + 4 + 2) == 3


def test_queue_full(backend):
    r = make_rig(backend, "split")
    r.drv.add([(0x101000, 8)] * 3, [], token=1)
    with pytest.raises(RingError) as e:
        r.drv.add([(0x101000, 8)] * 2, [], token=2)
    assert e.value.code == RingErrorCode.QUEUE_FULL
    assert r.u16(AVAIL + 2) == 1  # nothing published


def test_indirect_table_fields(backend):
    r = make_rig(backend, "split", indirect=True)
    r.drv.add([(0x101000, 0x10)], [(0x102000, 0x20), (0x103000, 0x30)], token=5, indirect=0x104000)
    assert r.split_desc(0) == (0x104000, 48, 4, 0)      # INDIRECT, table of 3 x 16 bytes
    tbl = [r.u64(0x104000 + 16 * i) for i in range(3)]
    assert tbl == [0x101000, 0x102000, 0x103000]
    # table entries: len, flags, next inside the table
    assert [(r.u32(0x104000 + 16 * i + 8), r.u16(0x104000 + 16 * i + 12), r.u16(0x104000 + 16 * i + 14))
            for i in range(3)] == [(0x10, 1, 1), (0x20, 3, 2), (0x30, 2, 0)]
    assert r.drv.num_free == 3
    chain = r.dev.pop()
    assert [s.gpa for s in chain.segments] == [0x101000, 0x102000, 0x103000]
    assert [s.writable for s in chain.segments] == [False, True, True]


def test_indirect_without_feature_is_a_caller_error(backend):
    r = make_rig(backend, "split")
    with pytest.raises(RingError) as e:
        r.drv.add([(0x101000, 8)], [], token=1, indirect=0x104000)
    assert e.value.code == RingErrorCode.BAD_REQUEST


def test_flag_based_suppression(backend):
    r = make_rig(backend, "split")
    r.dev.disable_notifications()
    assert r.u16(USED) == 1                          # NO_NOTIFY
    assert r.drv.add([(0x101000, 8)], [], token=1) is False
    assert r.dev.enable_notifications() is True      # a buffer is already waiting
    assert r.u16(USED) == 0
    assert r.drv.add([(0x101000, 8)], [], token=2) is True

    r.drv.disable_interrupts()
    assert r.u16(AVAIL) == 1                          # NO_INTERRUPT
    c = r.dev.pop()
    assert r.dev.push(c.id, 0) is False
    assert r.drv.enable_interrupts() is True          # used buffer already waiting
    assert r.u16(AVAIL) == 0
    c = r.dev.pop()
    assert r.dev.push(c.id, 0) is True


def test_event_idx(backend):
    r = make_rig(backend, "split", event_idx=True)
    # avail_event starts at 0: the first buffer (index 0) crosses it, the second does not
    assert r.drv.add([(0x101000, 8)], [], token=1) is True
    assert r.drv.add([(0x101000, 8)], [], token=2) is False
    a, b = r.dev.pop(), r.dev.pop()
    assert r.dev.enable_notifications() is False
    assert r.u16(USED + 36) == 2                      # avail_event = next index the device reads
    assert r.u16(USED) == 0                           # flags stay 0 with EVENT_IDX
    r.dev.disable_notifications()
    assert r.u16(USED) == 0
    assert r.drv.add([(0x101000, 8)], [], token=3) is True   # index 2 crosses avail_event 2
    # used_event starts at 0: the first used entry interrupts, the next does not
    assert r.dev.push(a.id, 0) is True
    assert r.dev.push(b.id, 0) is False
    r.drv.collect()
    assert r.drv.enable_interrupts() is False
    assert r.u16(AVAIL + 12) == 2                     # used_event = next used index the driver reads
    c = r.dev.pop()
    assert r.dev.push(c.id, 0) is True


def test_event_idx_need_event_window(backend):
    """Batch add of 3 buffers (indexes 0..2) notifies iff avail_event is in [0, 3)."""
    for event, expect in ((0, True), (2, True), (3, False), (0xFFFF, False)):
        r = make_rig(backend, "split", event_idx=True)
        r.put(USED + 36, "<H", event)
        from device_ref.ring import ChainBatch
        b = ChainBatch(3, 3)
        for t in range(3):
            b.append([(0x101000, 8)], [], t)
        assert r.drv.add_batch(b) == (3, expect), event


def test_in_order_batch_used_entry(backend):
    r = make_rig(backend, "split", in_order=True)
    for t in (10, 11, 12):
        r.drv.add([], [(0x102000 + 0x100 * t, 16)], token=t)
    ids = [r.dev.pop().id for _ in range(3)]
    assert ids == [0, 1, 2]                      # descriptors used in ring order
    r.dev.push_many([(i, 16) for i in ids], coalesce=True)
    # one used entry, at the position of the first buffer, naming the last buffer
    assert (r.u32(USED + 4), r.u32(USED + 8)) == (2, 16)
    assert (r.u32(USED + 12), r.u32(USED + 16)) == (0, 0)   # untouched
    assert r.u16(USED + 2) == 3                              # idx advanced by the batch size
    # the driver completes every earlier buffer too; only the last length is known
    assert r.drv.collect() == [(10, 0), (11, 0), (12, 16)]
    # next chain continues in ring order and wraps: descriptor 3 -> next 0
    r.drv.add([(0x101000, 8)], [(0x102000, 8)], token=13)
    assert r.split_desc(3)[2:] == (1, 0)      # NEXT, next = 0 for the last table entry
    assert r.split_desc(0)[:3] == (0x102000, 8, 2)
    assert r.dev.pop().id == 3


def test_push_caller_errors_leave_ring_alone(backend):
    r = make_rig(backend, "split", in_order=True)
    r.drv.add([(0x101000, 8)], [(0x102000, 16)], token=1)
    r.drv.add([(0x101000, 8)], [(0x102000, 16)], token=2)
    a, b = r.dev.pop(), r.dev.pop()
    for call, code in ((lambda: r.dev.push(b.id, 0), RingErrorCode.PUSH_OUT_OF_ORDER),
                       (lambda: r.dev.push(3, 0), RingErrorCode.PUSH_UNKNOWN_ID),
                       (lambda: r.dev.push(a.id, 17), RingErrorCode.BAD_REQUEST),
                       (lambda: r.dev.push_many([(a.id, 0), (a.id, 0)]), RingErrorCode.PUSH_UNKNOWN_ID)):
        with pytest.raises(RingError) as e:
            call()
        assert e.value.code == code
    assert r.u16(USED + 2) == 0 and r.dev.error is None
    assert r.dev.push(a.id, 16) is True


@pytest.mark.parametrize("in_order", [False, True])
def test_a_bad_entry_late_in_a_push_batch_leaves_the_used_ring_as_it_was(backend, in_order):
    # the checks run as the entries are written (C core): the entries before
    # the bad one must get their old bytes back, and nothing be published
    r = make_rig(backend, "split", size=8, in_order=in_order)
    for t in range(4):
        r.drv.add([(0x101000, 8)], [(0x102000, 16)], token=t)
    chains = [r.dev.pop() for _ in range(4)]
    ids = [c.id for c in chains]
    used = r.cfg.device - BASE
    used_area = slice(used, used + 6 + 8 * 8)
    r.buf[used_area.start + 4:used_area.stop] = bytes(range(8 * 8 + 2))   # old bytes to keep
    before = bytes(r.buf[used_area])
    for batch, code in (([(ids[0], 16), (ids[1], 4), (ids[0], 0)], RingErrorCode.PUSH_UNKNOWN_ID),
                        ([(ids[0], 16), (ids[1], 4), (ids[2], 17)], RingErrorCode.BAD_REQUEST),
                        ([(ids[0], 1), (ids[1], 2), (ids[2], 3), (99, 0)], RingErrorCode.PUSH_UNKNOWN_ID),
                        ([(ids[0], 1), (ids[2], 2)], RingErrorCode.PUSH_OUT_OF_ORDER if in_order
                         else None)):
        if code is None:
            continue
        with pytest.raises(RingError) as e:
            r.dev.push_many(batch)
        assert e.value.code == code
        assert bytes(r.buf[used_area]) == before and r.dev.error is None
    # every buffer is still in flight and pushes as usual
    assert r.dev.push_many([(i, 16) for i in ids]) is True
    assert r.u16(r.cfg.device + 2) == 4
    assert sorted(r.drv.collect()) == [(t, 16) for t in range(4)]


def test_device_start_index(backend):
    r = make_rig(backend, "split", device=False)
    for t in range(3):
        r.drv.add([(0x101000, 8)], [], token=t)
    from device_ref.ring import DeviceQueue
    dev = DeviceQueue(r.mem, r.cfg, start=2, backend=backend)
    assert dev.state == 2
    assert dev.pop().id == 2   # third buffer: descriptors 0, 1, 2 in order
    assert dev.state == 3
