"""Guest memory map: translation with bounds checks, regions of any writable buffer."""
from __future__ import annotations

import mmap
import os

import pytest

from device_ref.ring import DeviceQueue, DriverQueue, GuestMemory, RingError, RingErrorCode as E, place_rings


def test_translate_read_write_inside_one_region():
    mem = GuestMemory()
    buf = bytearray(0x1000)
    mem.add_region(0x10000, buf)
    mem.write(0x10ff0, b"0123456789abcdef")       # ends exactly at the region end
    assert buf[0xff0:] == b"0123456789abcdef"
    assert mem.read(0x10ff8, 8) == b"89abcdef"
    view = mem.translate(0x10000, 4)
    view[:] = b"WXYZ"
    assert buf[:4] == b"WXYZ"
    assert mem.contains(0x10000, 0x1000) and not mem.contains(0x10000, 0x1001)


@pytest.mark.parametrize("gpa,length,code", [
    (0x0fff0, 0x20, E.OUT_OF_BOUNDS),          # straddles the start
    (0x10ff0, 0x11, E.OUT_OF_BOUNDS),          # straddles the end
    (0x11000, 1, E.OUT_OF_BOUNDS),             # just past the end
    (0x20000, 0, E.OUT_OF_BOUNDS),             # nowhere
    ((1 << 64) - 8, 16, E.ADDR_OVERFLOW),      # wraps
    (-1, 4, E.BAD_REQUEST),
])
@pytest.mark.parametrize("warm", [False, True], ids=["cold", "after-a-good-access"])
def test_bad_ranges(gpa, length, code, warm):
    mem = GuestMemory()
    mem.add_region(0x10000, bytearray(0x1000))
    if warm:   # translate remembers the region it last used: it must not skip checks
        mem.read(0x10000, 0x1000)
    with pytest.raises(RingError) as e:
        mem.read(gpa, length)
    assert e.value.code == code
    with pytest.raises(RingError):
        mem.translate(gpa, length)


def test_range_across_adjacent_regions_is_refused():
    mem = GuestMemory()
    a, b = bytearray(0x1000), bytearray(0x1000)
    mem.add_region(0x10000, a)
    mem.add_region(0x11000, b)
    assert mem.read(0x10ffc, 4) == bytes(4) and mem.read(0x11000, 4) == bytes(4)
    with pytest.raises(RingError) as e:
        mem.read(0x10ffc, 8)
    assert e.value.code == E.OUT_OF_BOUNDS
    # alternating between regions reaches the right buffer each time
    mem.write(0x10000, b"a")
    mem.write(0x11000, b"b")
    mem.write(0x10001, b"c")
    assert (a[:2], b[:1]) == (b"ac", b"b")


@pytest.mark.parametrize("gpa,size", [(0x10800, 0x1000), (0x0f800, 0x1000), (0x10000, 0x10), (0xf000, 0x3000)])
def test_overlapping_regions_rejected(gpa, size):
    mem = GuestMemory()
    mem.add_region(0x10000, bytearray(0x1000))
    with pytest.raises(RingError) as e:
        mem.add_region(gpa, bytearray(size))
    assert e.value.code == E.BAD_CONFIG


def test_read_only_and_empty_buffers_rejected():
    mem = GuestMemory()
    for buf in (b"abc", bytearray()):
        with pytest.raises(RingError) as e:
            mem.add_region(0, buf)
        assert e.value.code == E.BAD_CONFIG


def test_memfd_region_shared_by_two_mappings(backend):
    """vhost-user style: the driver and the device map the same memfd separately."""
    fd = os.memfd_create("ring-test")
    try:
        os.ftruncate(fd, 0x10000)
        front = mmap.mmap(fd, 0x10000)
        back = mmap.mmap(fd, 0x10000)
        dmem, bmem = GuestMemory(), GuestMemory()
        dmem.add_region(0x80000000, front)
        bmem.add_region(0x80000000, back)
        for layout in ("split", "packed"):
            cfg = place_rings(layout, 8, 0x80000000)
            drv = DriverQueue(dmem, cfg, backend=backend)
            dev = DeviceQueue(bmem, cfg, backend=backend)
            dmem.write(0x80008000, b"ping")
            drv.add([(0x80008000, 4)], [(0x80009000, 8)], token=7)
            c = dev.pop()
            assert dev.read_chain(c) == b"ping"
            dev.write_chain(c, b"pong")
            dev.push(c.id, 4)
            assert drv.collect() == [(7, 4)]
            assert dmem.read(0x80009000, 4) == b"pong"
            del drv, dev
    finally:
        os.close(fd)


def test_backend_choice(monkeypatch):
    from device_ref.ring import default_backend
    monkeypatch.setenv("DEVICE_REF_RING", "python")
    assert default_backend() == "python"
    monkeypatch.setenv("DEVICE_REF_RING", "c")
    assert default_backend() == "c"
    monkeypatch.setenv("DEVICE_REF_RING", "fortran")
    with pytest.raises(RingError) as e:
        default_backend()
    assert e.value.code == E.BAD_CONFIG
    monkeypatch.setenv("DEVICE_REF_RING", "python")
    mem = GuestMemory()
    mem.add_region(0, bytearray(0x10000))
    assert DriverQueue(mem, place_rings("split", 4, 0)).backend == "python"


def test_memoryview_slice_region_and_cycle_collection(backend):
    """A region given as a memoryview slice maps at the slice's offset, and the
    whole set-up can be torn down by the cycle collector (no crash)."""
    import gc
    import struct
    m = mmap.mmap(-1, 0x20000)
    view = memoryview(m)[0x8000:0x18000]
    mem = GuestMemory()
    mem.add_region(0x100000, view)
    cfg = place_rings("split", 4, 0x100000)
    drv = DriverQueue(mem, cfg, backend=backend)
    dev = DeviceQueue(mem, cfg, backend=backend)
    drv.add([], [(0x101000, 4)], token=1)
    # the driver wrote descriptor 0 at the start of the slice, not of the mmap
    assert struct.unpack_from("<QIHH", m, 0x8000) == (0x101000, 4, 2, 0)
    c = dev.pop()
    dev.push(c.id, 4)
    assert drv.collect() == [(1, 4)]
    holder: list = [mem, drv, dev, view]
    holder.append(holder)
    del holder, mem, drv, dev, view, c
    gc.collect()
