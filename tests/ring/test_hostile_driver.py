"""Device side against a hostile driver: every malformed ring ends in its own
error code (the device would set DEVICE_NEEDS_RESET), on both backends,
without touching memory outside the map or looping."""
from __future__ import annotations

import mmap

import pytest

from device_ref.ring import (DeviceQueue, GuestMemory, PopBatch, RingError, RingErrorCode as E,
                             place_rings)

from .hostile import (AVAIL, BUF, INDIRECT, NEXT, USED, WRITE, packed_desc, packed_table_desc,
                      split_avail, split_desc, table_desc)
from .rig import BASE, MEM_SIZE, make_rig

END = BASE + MEM_SIZE
TABLE = 0x10C000


def pop_error(r) -> E:
    with pytest.raises(RingError) as e:
        r.dev.pop()
    code = e.value.code
    # the queue stays broken: the next pop reports the same error
    with pytest.raises(RingError) as again:
        r.dev.pop()
    assert again.value.code == code and r.dev.error == code
    return code


# ---------------- split ----------------

def split_rig(backend, **kw):
    return make_rig(backend, "split", **kw)


def test_split_loop(backend):
    r = split_rig(backend)
    split_desc(r, 0, BUF, 8, NEXT, 1)
    split_desc(r, 1, BUF, 8, NEXT, 0)
    split_avail(r, [0])
    assert pop_error(r) == E.CHAIN_TOO_LONG


def test_split_self_loop(backend):
    r = split_rig(backend)
    split_desc(r, 2, BUF, 8, NEXT, 2)
    split_avail(r, [2])
    assert pop_error(r) == E.CHAIN_TOO_LONG


def test_split_head_out_of_range(backend):
    r = split_rig(backend)
    split_avail(r, [4])
    assert pop_error(r) == E.DESC_INDEX_RANGE


def test_split_next_out_of_range(backend):
    r = split_rig(backend)
    split_desc(r, 0, BUF, 8, NEXT, 9)
    split_avail(r, [0])
    assert pop_error(r) == E.DESC_INDEX_RANGE


def test_split_avail_index_jump(backend):
    r = split_rig(backend)
    split_desc(r, 0, BUF, 8)
    split_avail(r, [0], idx=5)         # 5 new buffers in a ring of 4
    assert pop_error(r) == E.AVAIL_IDX_JUMP


def test_split_avail_index_jump_backwards(backend):
    r = split_rig(backend)
    split_avail(r, [0], idx=0xFFFF)     # "65535 new buffers"
    assert pop_error(r) == E.AVAIL_IDX_JUMP


@pytest.mark.parametrize("addr,ln,code", [
    (0xFFFF_FFFF_FFFF_FFF0, 0x20, E.ADDR_OVERFLOW),     # wraps past 2**64
    (0xFFFF_FFFF_FFFF_FFFF, 1, E.ADDR_OVERFLOW),
    (0x200000, 8, E.OUT_OF_BOUNDS),                     # outside every region
    (BASE - 4, 8, E.OUT_OF_BOUNDS),                     # straddles the region start
    (END - 4, 8, E.OUT_OF_BOUNDS),                      # straddles the region end
    (END, 1, E.OUT_OF_BOUNDS),
])
def test_split_bad_segment(backend, addr, ln, code):
    r = split_rig(backend)
    split_desc(r, 0, BUF, 8, NEXT, 1)
    split_desc(r, 1, addr, ln, WRITE, 0)
    split_avail(r, [0])
    assert pop_error(r) == code


def test_segment_ending_exactly_at_region_end_is_fine(backend):
    r = split_rig(backend)
    split_desc(r, 0, END - 8, 8, WRITE, 0)
    split_avail(r, [0])
    assert r.dev.pop().segments[0].gpa == END - 8


def test_segment_spanning_two_adjacent_regions(backend):
    r = split_rig(backend)
    r.mem.add_region(END, bytearray(0x1000))     # contiguous guest range, separate host buffers
    split_desc(r, 0, END - 4, 8, 0, 0)
    split_avail(r, [0])
    assert pop_error(r) == E.OUT_OF_BOUNDS


def test_split_read_after_write(backend):
    r = split_rig(backend)
    split_desc(r, 0, BUF, 8, WRITE | NEXT, 1)
    split_desc(r, 1, BUF, 8, 0, 0)
    split_avail(r, [0])
    assert pop_error(r) == E.READ_AFTER_WRITE


def test_split_same_head_twice(backend):
    r = split_rig(backend)
    split_desc(r, 0, BUF, 8)
    split_avail(r, [0, 0])
    with pytest.raises(RingError) as e:
        r.dev.pop_batch(PopBatch(4, 4))
    assert e.value.code == E.ID_IN_USE and e.value.count == 1


def test_split_indirect_not_negotiated(backend):
    r = split_rig(backend)
    split_desc(r, 0, TABLE, 16, INDIRECT)
    split_avail(r, [0])
    assert pop_error(r) == E.INDIRECT_NOT_NEGOTIATED


@pytest.mark.parametrize("flags,ln,code", [
    (INDIRECT | NEXT, 32, E.INDIRECT_WITH_NEXT),
    (INDIRECT, 24, E.INDIRECT_BAD_LEN),
    (INDIRECT, 0, E.INDIRECT_BAD_LEN),
    (INDIRECT, 16 * 5, E.CHAIN_TOO_LONG),       # more entries than the queue size (4)
])
def test_split_indirect_descriptor_errors(backend, flags, ln, code):
    r = split_rig(backend, indirect=True)
    table_desc(r, TABLE, 0, BUF, 8)
    split_desc(r, 0, TABLE, ln, flags, 1)
    split_desc(r, 1, BUF, 8)
    split_avail(r, [0])
    assert pop_error(r) == code


def test_split_indirect_table_outside_memory(backend):
    r = split_rig(backend, indirect=True)
    split_desc(r, 0, END - 16, 32, INDIRECT)
    split_avail(r, [0])
    assert pop_error(r) == E.OUT_OF_BOUNDS


def test_split_nested_indirect(backend):
    r = split_rig(backend, indirect=True)
    table_desc(r, TABLE, 0, BUF, 8, NEXT, 1)
    table_desc(r, TABLE, 1, TABLE + 0x100, 16, INDIRECT)
    split_desc(r, 0, TABLE, 32, INDIRECT)
    split_avail(r, [0])
    assert pop_error(r) == E.INDIRECT_NESTED


def test_split_indirect_loop(backend):
    r = split_rig(backend, indirect=True)
    table_desc(r, TABLE, 0, BUF, 8, NEXT, 1)
    table_desc(r, TABLE, 1, BUF, 8, NEXT, 0)
    split_desc(r, 0, TABLE, 32, INDIRECT)
    split_avail(r, [0])
    assert pop_error(r) == E.CHAIN_TOO_LONG


def test_split_indirect_next_out_of_table(backend):
    r = split_rig(backend, indirect=True)
    table_desc(r, TABLE, 0, BUF, 8, NEXT, 2)
    split_desc(r, 0, TABLE, 32, INDIRECT)
    split_avail(r, [0])
    assert pop_error(r) == E.DESC_INDEX_RANGE


def test_split_direct_then_indirect_is_valid(backend):
    r = split_rig(backend, indirect=True)
    table_desc(r, TABLE, 0, BUF + 0x10, 8, WRITE)
    split_desc(r, 0, BUF, 8, NEXT, 1)
    split_desc(r, 1, TABLE, 16, INDIRECT | WRITE)      # WRITE on the table descriptor is ignored
    split_avail(r, [0])
    c = r.dev.pop()
    assert [(s.gpa, s.writable) for s in c.segments] == [(BUF, False), (BUF + 0x10, True)]


def test_chain_writable_length_overflow(backend):
    mem = GuestMemory()
    big = mmap.mmap(-1, 1 << 31)      # untouched anonymous memory costs nothing
    mem.add_region(1 << 32, big)
    small = bytearray(0x10000)
    mem.add_region(BASE, small)
    cfg = place_rings("split", 4, BASE)
    dev = DeviceQueue(mem, cfg, backend=backend)
    import struct
    struct.pack_into("<QIHH", small, 0, 1 << 32, 0x8000_0000, WRITE | NEXT, 1)
    struct.pack_into("<QIHH", small, 16, 1 << 32, 0x8000_0000, WRITE, 0)
    struct.pack_into("<HH", small, cfg.driver - BASE + 2, 1, 0)
    with pytest.raises(RingError) as e:
        dev.pop()
    assert e.value.code == E.CHAIN_LEN_OVERFLOW
    del dev


def test_pop_stops_cleanly_on_error_mid_batch(backend):
    r = split_rig(backend)
    split_desc(r, 0, BUF, 8)
    split_desc(r, 1, 0x200000, 8)
    split_avail(r, [0, 1])
    batch = PopBatch(4, 4)
    with pytest.raises(RingError) as e:
        r.dev.pop_batch(batch)
    assert e.value.code == E.OUT_OF_BOUNDS and e.value.count == 1 and batch.count == 1
    assert batch.chain_list()[0].id == 0


# ---------------- packed ----------------

def packed_rig(backend, **kw):
    return make_rig(backend, "packed", **kw)


def test_packed_chain_longer_than_queue(backend):
    r = packed_rig(backend)
    for i in range(4):
        packed_desc(r, i, BUF, 8, 0, NEXT | AVAIL)
    assert pop_error(r) == E.CHAIN_TOO_LONG


def test_packed_chained_descriptor_wrong_wrap(backend):
    r = packed_rig(backend)
    packed_desc(r, 0, BUF, 8, 0, NEXT | AVAIL)
    packed_desc(r, 1, BUF, 8, 0, USED)          # marked for the other lap
    assert pop_error(r) == E.PACKED_BAD_FLAGS


def test_packed_head_with_wrong_wrap_is_not_available(backend):
    r = packed_rig(backend)
    packed_desc(r, 0, BUF, 8, 0, USED)          # available only in the second lap
    assert r.dev.pop() is None and r.dev.error is None
    packed_desc(r, 0, BUF, 8, 0, AVAIL | USED)  # looks used
    assert r.dev.pop() is None and r.dev.error is None


def test_packed_buffer_id_out_of_range(backend):
    r = packed_rig(backend)
    packed_desc(r, 0, BUF, 8, 7, AVAIL)
    assert pop_error(r) == E.BUFFER_ID_RANGE


def test_packed_buffer_id_in_use(backend):
    r = packed_rig(backend)
    packed_desc(r, 0, BUF, 8, 1, AVAIL)
    packed_desc(r, 1, BUF, 8, 1, AVAIL)
    assert r.dev.pop().id == 1
    assert pop_error(r) == E.ID_IN_USE


def test_packed_overrun(backend):
    """The driver cannot make available more descriptors than the device has returned."""
    r = packed_rig(backend)
    for i in range(4):
        packed_desc(r, i, BUF, 8, i, AVAIL)
    for _ in range(4):
        r.dev.pop()
    packed_desc(r, 0, BUF, 8, 0, USED)            # second lap while all four are in flight
    assert pop_error(r) == E.AVAIL_IDX_JUMP


@pytest.mark.parametrize("addr,ln,code", [
    (0xFFFF_FFFF_FFFF_FFF8, 0x10, E.ADDR_OVERFLOW),
    (END - 4, 8, E.OUT_OF_BOUNDS),
    (0, 8, E.OUT_OF_BOUNDS),
])
def test_packed_bad_segment(backend, addr, ln, code):
    r = packed_rig(backend)
    packed_desc(r, 0, addr, ln, 0, AVAIL)
    assert pop_error(r) == code


@pytest.mark.parametrize("flags,ln,code", [
    (INDIRECT | NEXT | AVAIL, 32, E.INDIRECT_WITH_NEXT),
    (INDIRECT | AVAIL, 20, E.INDIRECT_BAD_LEN),
    (INDIRECT | AVAIL, 0, E.INDIRECT_BAD_LEN),
])
def test_packed_indirect_descriptor_errors(backend, flags, ln, code):
    r = packed_rig(backend, indirect=True)
    packed_table_desc(r, TABLE, 0, BUF, 8)
    packed_table_desc(r, TABLE, 1, BUF, 8)
    packed_desc(r, 0, TABLE, ln, 0, flags)
    packed_desc(r, 1, BUF, 8, 0, AVAIL)
    assert pop_error(r) == code


def test_packed_indirect_not_negotiated(backend):
    r = packed_rig(backend)
    packed_desc(r, 0, TABLE, 16, 0, INDIRECT | AVAIL)
    assert pop_error(r) == E.INDIRECT_NOT_NEGOTIATED


def test_packed_nested_indirect(backend):
    r = packed_rig(backend, indirect=True)
    packed_table_desc(r, TABLE, 0, BUF, 8)
    packed_table_desc(r, TABLE, 1, TABLE, 32, INDIRECT)
    packed_desc(r, 0, TABLE, 32, 0, INDIRECT | AVAIL)
    assert pop_error(r) == E.INDIRECT_NESTED


def test_packed_indirect_segment_out_of_bounds(backend):
    r = packed_rig(backend, indirect=True)
    packed_table_desc(r, TABLE, 0, BUF, 8)
    packed_table_desc(r, TABLE, 1, END, 8, WRITE)
    packed_desc(r, 0, TABLE, 32, 0, INDIRECT | AVAIL)
    assert pop_error(r) == E.OUT_OF_BOUNDS


# ---------------- restricted map (VIRTIO_F_SWIOTLB) ----------------

@pytest.mark.parametrize("layout", ["split", "packed"])
def test_device_limited_to_bounce_region(backend, layout):
    """The driver's map has all memory; the device's has only the bounce region."""
    from device_ref.ring import DriverQueue
    system = bytearray(0x10000)
    bounce = bytearray(0x10000)
    dmem = GuestMemory()
    dmem.add_region(0x0, system)
    dmem.add_region(0x40000, bounce)
    devmem = GuestMemory()
    devmem.add_region(0x40000, bounce)           # the same host bytes, nothing else
    cfg = place_rings(layout, 4, 0x40000)
    drv = DriverQueue(dmem, cfg, backend=backend)
    dev = DeviceQueue(devmem, cfg, backend=backend)
    drv.add([(0x48000, 16)], [(0x49000, 16)], token=1)
    c = dev.pop()
    dev.write_chain(c, b"x" * 16)
    dev.push(c.id, 16)
    assert drv.collect() == [(1, 16)] and bounce[0x9000:0x9010] == b"x" * 16
    drv.add([(0x1000, 16)], [], token=2)          # system memory: the device must refuse
    with pytest.raises(RingError) as e:
        dev.pop()
    assert e.value.code == E.OUT_OF_BOUNDS
    assert system == bytearray(0x10000)
    with pytest.raises(RingError):
        DeviceQueue(devmem, place_rings(layout, 4, 0x0), backend=backend)   # rings outside the region


def test_errors_leave_no_reference_cycle(backend):
    """A raised RingError must not tie itself to the frames that raised it:
    such cycles keep guest memory alive until the cycle collector runs."""
    import gc
    import weakref
    gc.disable()
    try:
        r = split_rig(backend)
        split_avail(r, [4])
        with pytest.raises(RingError):
            r.dev.pop()
        with pytest.raises(RingError):
            r.dev.pop_batch(PopBatch(4, 4))
        core = weakref.ref(r.dev._core)
        memory = weakref.ref(r.mem)
        del r
        assert core() is None and memory() is None   # freed by reference counting alone
    finally:
        gc.enable()
