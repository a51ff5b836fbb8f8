"""virtio-rng: device id 4, fills writable buffers, used length = bytes written."""
import random

from device_ref.device.chain import ChainIO, Segment
from device_ref.devices.rng import RngDevice

from .test_blk_semantics import FlatMemory


def test_seeded_fill_is_predictable_across_segments():
    mem = FlatMemory(0x1000)
    dev = RngDevice(seed=7)
    used = dev.handle(0, ChainIO(mem, [Segment(0x10, 5, True), Segment(0x100, 11, True)]))
    expected = random.Random(7).randbytes(16)
    assert used == 16
    assert bytes(mem.data[0x10:0x15]) + bytes(mem.data[0x100:0x10b]) == expected
    assert dev.device_id() == 4


def test_max_fill_uses_less_than_buffer():
    mem = FlatMemory(0x1000)
    dev = RngDevice(seed=1, max_fill=3)
    assert dev.handle(0, ChainIO(mem, [Segment(0, 64, True)])) == 3
    assert bytes(mem.data[3:64]) == bytes(61)


def test_readable_buffer_is_recorded_as_violation():
    mem = FlatMemory(0x1000)
    dev = RngDevice(seed=1)
    dev.handle(0, ChainIO(mem, [Segment(0, 4, False), Segment(8, 4, True)]))
    assert dev.events[-1].kind == "violation"


def test_one_request_gets_at_most_max_fill_however_long_the_chain():
    # 64 descriptors over the same 64 KiB: 4 MiB of buffer from 64 KiB of memory
    from device_ref.devices.rng import MAX_FILL
    mem = FlatMemory(0x10000)
    dev = RngDevice(seed=1)
    io = ChainIO(mem, [Segment(0, 0x10000, True)] * 64)
    assert io.writable_len == 64 * 0x10000 > MAX_FILL
    assert dev.handle(0, io) == MAX_FILL
