"""The runner's strict driver side (``HQueue``) reads a packed used descriptor's
length only where the spec gives it a meaning: with VIRTQ_DESC_F_WRITE set.
Without it the field is reserved and drivers ignore it (DPDK's vhost leaves
the driver's length there for transmitted frames)."""
from __future__ import annotations

import struct

import pytest

from device_ref.ring.hostile import Desc, HQueue, RingViolation
from device_ref.ring.layout import DESC_F_AVAIL, DESC_F_USED, DESC_F_WRITE, PACKED, QueueConfig
from device_ref.ring.memory import GuestMemory


def _queue() -> tuple[GuestMemory, HQueue]:
    mem = GuestMemory()
    mem.add_region(0, bytearray(1 << 16))
    return mem, HQueue(mem, QueueConfig(PACKED, 8, 0x1000, 0x2000, 0x3000), 1)


def _device_uses(mem: GuestMemory, slot: int, bid: int, length: int, write: bool) -> None:
    flags = DESC_F_AVAIL | DESC_F_USED | (DESC_F_WRITE if write else 0)   # wrap counter 1
    mem.write(0x1000 + 16 * slot, struct.pack("<QIHH", 0, length, bid, flags))


def test_length_of_a_used_descriptor_without_write_is_ignored():
    mem, q = _queue()
    buf = q.add_chain([Desc(0x8000, 72, 0)], token=7, writable_len=0)
    _device_uses(mem, 0, buf.id, 72, write=False)
    (used,) = q.collect()
    assert (used.token, used.length) == (7, 0)


def test_length_beyond_the_writable_part_with_write_is_still_a_violation():
    mem, q = _queue()
    buf = q.add_chain([Desc(0x8000, 16, DESC_F_WRITE)], token=8, writable_len=16)
    _device_uses(mem, 0, buf.id, 64, write=True)
    with pytest.raises(RingViolation, match="used length 64"):
        q.collect()
