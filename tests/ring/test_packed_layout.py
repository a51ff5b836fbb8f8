"""Packed virtqueue: ring contents field by field, as the packed layout rules say.

Layout (queue size 4, areas placed from 0x100000): descriptor ring at
0x100000, 16 bytes each: le64 addr, le32 len, le16 id, le16 flags; driver
event suppression at 0x100040 and device event suppression at 0x100044,
each le16 desc (offset in bits 0-14, wrap in bit 15) and le16 flags
(0 enable, 1 disable, 2 descriptor-specific).
Flags: NEXT=1, WRITE=2, INDIRECT=4, AVAIL=0x80, USED=0x8000.  Wrap counters
start at 1; available means AVAIL == wrap and USED != wrap; used means both
equal to the device's wrap counter.
"""
from __future__ import annotations

import pytest

from device_ref.ring import ChainBatch, RingError, RingErrorCode, Segment, place_rings, ring_areas

from .rig import make_rig

DESC, DRV_EVT, DEV_EVT = 0x100000, 0x100040, 0x100044
NEXT, WRITE, INDIRECT, AVAIL, USED = 1, 2, 4, 0x80, 0x8000


def test_area_sizes_and_placement():
    a = ring_areas("packed", 4)
    assert (a.desc.size, a.desc.align, a.driver.size, a.driver.align, a.device.size, a.device.align) == \
        (64, 16, 4, 4, 4, 4)
    cfg = place_rings("packed", 4, 0x100000)
    assert (cfg.desc, cfg.driver, cfg.device) == (DESC, DRV_EVT, DEV_EVT)
    assert ring_areas("packed", 3).desc.size == 48    # packed sizes need not be powers of 2


def test_chain_fields_and_used_descriptor(backend):
    r = make_rig(backend, "packed")
    assert r.drv.add([(0x101000, 0x10)], [(0x102000, 0x20), (0x103000, 0x30)], token=99) is True
    # buffer id 0; first lap: AVAIL set, USED clear on every descriptor of the chain
    assert r.packed_desc(0) == (0x101000, 0x10, 0, NEXT | AVAIL)
    assert r.packed_desc(1) == (0x102000, 0x20, 0, NEXT | WRITE | AVAIL)
    assert r.packed_desc(2) == (0x103000, 0x30, 0, WRITE | AVAIL)
    chain = r.dev.pop()
    assert chain.id == 0
    assert chain.segments == (Segment(0x101000, 0x10, False), Segment(0x102000, 0x20, True),
                              Segment(0x103000, 0x30, True))
    assert r.dev.pop() is None
    assert r.dev.push(0, 0x25) is True
    # one used descriptor in slot 0: id, length, WRITE (data written), AVAIL = USED = 1
    assert r.packed_desc(0) == (0x101000, 0x25, 0, WRITE | AVAIL | USED)
    assert r.packed_desc(1)[3] == NEXT | WRITE | AVAIL      # skipped slots untouched
    assert r.drv.collect() == [(99, 0x25)]
    assert r.drv.num_free == 4


def test_wrap_counter_flips(backend):
    r = make_rig(backend, "packed")
    r.drv.add([(0x101000, 8)], [(0x102000, 8), (0x103000, 8)], token=1)   # slots 0..2
    r.dev.push(r.dev.pop().id, 0)
    r.drv.collect()
    r.drv.add([(0x104000, 4)], [(0x105000, 4)], token=2)   # slots 3 and 0 (second lap)
    # buffer id 1 (ids are handed out first-in first-out)
    assert r.packed_desc(3) == (0x104000, 4, 1, NEXT | AVAIL)          # wrap 1
    assert r.packed_desc(0) == (0x105000, 4, 1, WRITE | USED)          # wrap 0: AVAIL clear, USED set
    c = r.dev.pop()
    assert c.id == 1 and [s.gpa for s in c.segments] == [0x104000, 0x105000]
    assert r.dev.state == 1                # next slot 1, wrap counter 0 (bit 15 clear)
    r.dev.push(1, 0)
    # used descriptor written at slot 3 with the device wrap counter 1; no WRITE for length 0
    assert r.packed_desc(3)[1:] == (0, 1, AVAIL | USED)
    assert r.drv.collect() == [(2, 0)]
    # third chain at slot 1, second lap
    r.drv.add([(0x106000, 4)], [], token=3)
    assert r.packed_desc(1) == (0x106000, 4, 2, USED)    # ids FIFO: 2, 3, 0, 1 are free
    c = r.dev.pop()
    r.dev.push(c.id, 0)
    assert r.packed_desc(1)[3] == 0        # used in lap 2: AVAIL = USED = 0
    assert r.drv.collect() == [(3, 0)]


def test_indirect_fields(backend):
    r = make_rig(backend, "packed", indirect=True)
    r.drv.add([(0x101000, 0x10)], [(0x102000, 0x20)], token=5, indirect=0x104000)
    assert r.packed_desc(0) == (0x104000, 32, 0, INDIRECT | AVAIL)
    # table entries: addr, len, id 0, only WRITE meaningful
    assert [(r.u64(0x104000 + 16 * i), r.u32(0x104000 + 16 * i + 8), r.u16(0x104000 + 16 * i + 12),
             r.u16(0x104000 + 16 * i + 14)) for i in range(2)] == [(0x101000, 0x10, 0, 0), (0x102000, 0x20, 0, WRITE)]
    c = r.dev.pop()
    assert [s.writable for s in c.segments] == [False, True]
    r.dev.push(c.id, 0x20)
    assert r.drv.collect() == [(5, 0x20)]


def test_device_event_suppression(backend):
    r = make_rig(backend, "packed")
    r.dev.disable_notifications()
    assert r.u16(DEV_EVT + 2) == 1
    assert r.drv.add([(0x101000, 8)], [], token=1) is False
    assert r.dev.enable_notifications() is True
    assert r.u16(DEV_EVT + 2) == 0
    assert r.drv.add([(0x101000, 8)], [], token=2) is True


def test_descriptor_specific_events(backend):
    r = make_rig(backend, "packed", event_idx=True)
    r.drv.add([(0x101000, 8)], [], token=1)        # slot 0
    a = r.dev.pop()
    assert r.dev.enable_notifications() is False
    assert (r.u16(DEV_EVT), r.u16(DEV_EVT + 2)) == (1 | 0x8000, 2)   # notify at slot 1, wrap 1
    b = ChainBatch(2, 2)
    b.append([(0x101000, 8)], [], 2)
    b.append([(0x101000, 8)], [], 3)
    assert r.drv.add_batch(b) == (2, True)         # slots 1, 2 include slot 1
    assert r.drv.add([(0x101000, 8)], [], token=4) is False   # slot 3 does not
    # driver asks for an interrupt when slot 0 (wrap 1) is used
    assert r.drv.enable_interrupts() is False
    assert (r.u16(DRV_EVT), r.u16(DRV_EVT + 2)) == (0 | 0x8000, 2)
    assert r.dev.push(a.id, 0) is True
    c = r.dev.pop()
    assert r.dev.push(c.id, 0) is False            # slot 1 was not asked for
    r.drv.disable_interrupts()
    assert r.u16(DRV_EVT + 2) == 1
    d = r.dev.pop()
    assert r.dev.push(d.id, 0) is False


def test_event_in_previous_lap_window(backend):
    """A descriptor event names a slot with its wrap bit; the same slot in the other lap does not match."""
    r = make_rig(backend, "packed", event_idx=True)
    r.put(DEV_EVT, "<HH", 2, 2)     # slot 2 but wrap 0: a position one lap ahead
    b = ChainBatch(3, 3)
    for t in range(3):
        b.append([(0x101000, 8)], [], t)
    assert r.drv.add_batch(b) == (3, False)
    r2 = make_rig(backend, "packed", event_idx=True)
    r2.put(DEV_EVT, "<HH", 2 | 0x8000, 2)
    b.clear()
    for t in range(3):
        b.append([(0x101000, 8)], [], t)
    assert r2.drv.add_batch(b) == (3, True)


def test_in_order_batch_used_descriptor(backend):
    r = make_rig(backend, "packed", in_order=True)
    for t in (10, 11, 12):
        r.drv.add([], [(0x102000, 16)], token=t)
    ids = [r.dev.pop().id for _ in range(3)]
    assert ids == [0, 1, 2]
    r.dev.push_many([(i, 16) for i in ids], coalesce=True)
    # one used descriptor over the first slot of the batch, with the last buffer's id
    assert r.packed_desc(0) == (0x102000, 16, 2, WRITE | AVAIL | USED)
    assert r.packed_desc(1)[3] == WRITE | AVAIL                      # still as the driver wrote it
    assert r.drv.collect() == [(10, 0), (11, 0), (12, 16)]
    assert r.drv.num_free == 4
    r.drv.add([], [(0x102000, 16)], token=13)                        # slot 3
    assert r.packed_desc(3)[2:] == (3, WRITE | AVAIL)                # free ids FIFO: 3 first


def test_device_start_with_wrap(backend):
    r = make_rig(backend, "packed", device=False)
    for t in range(4):
        r.drv.add([(0x101000, 8)], [], token=t)
    from device_ref.ring import DeviceQueue
    dev = DeviceQueue(r.mem, r.cfg, start=2 | 0x8000, backend=backend)
    assert dev.pop().id == 2
    assert dev.state == 3 | 0x8000
    assert dev.pop().id == 3
    assert dev.state == 0                    # wrapped: slot 0, wrap counter 0
    assert dev.pop() is None
    with pytest.raises(RingError) as e:
        DeviceQueue(r.mem, r.cfg, start=4, backend=backend)
    assert e.value.code == RingErrorCode.BAD_CONFIG
