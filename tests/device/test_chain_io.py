"""ChainIO reads and writes the same whatever the descriptor boundaries:
the one-segment-each-way shortcut against the general path."""
from __future__ import annotations

import pytest

from device_ref.device.chain import ChainIO, Segment
from device_ref.ring.memory import GuestMemory

BASE = 0x10000


def chain(split: bool):
    mem = GuestMemory()
    mem.add_region(BASE, bytearray(range(256)) * 16)
    if split:   # the same 64 readable and 32 writable bytes over five descriptors
        segs = (Segment(BASE, 10, False), Segment(BASE + 10, 54, False),
                Segment(BASE + 0x800, 7, True), Segment(BASE + 0x807, 20, True),
                Segment(BASE + 0x81b, 5, True))
    else:
        segs = (Segment(BASE, 64, False), Segment(BASE + 0x800, 32, True))
    return mem, ChainIO(mem, segs)


@pytest.mark.parametrize("offset,length", [(0, 64), (0, 100), (5, 10), (60, 10), (64, 1),
                                           (70, 3), (0, 0), (3, -1)])
def test_reads_agree(offset, length):
    (_, one), (_, many) = chain(False), chain(True)
    assert one.read(offset, length) == many.read(offset, length)
    assert bytes(one.read_view(offset, length)) == bytes(many.read_view(offset, length))


@pytest.mark.parametrize("offset,data", [(0, b"x" * 32), (0, b"y" * 40), (30, b"abc"),
                                         (32, b"z"), (5, b""), (31, b"12")])
def test_writes_agree(offset, data):
    (m1, one), (m2, many) = chain(False), chain(True)
    assert one.write(offset, data) == many.write(offset, data)
    assert one.written == many.written
    assert m1.read(BASE + 0x800, 40) == m2.read(BASE + 0x800, 40)


def test_read_view_is_guest_memory_itself_for_one_descriptor():
    mem, one = chain(False)
    view = one.read_view(4, 4)
    mem.write(BASE + 4, b"NEW!")
    assert bytes(view) == b"NEW!"      # a view: copy through it, never decide on it
