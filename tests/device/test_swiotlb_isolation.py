"""With VIRTIO_F_SWIOTLB negotiated the device reaches only its bounce region.

The device is handed descriptors outside the region, straddling its end,
overflowing 64 bits, an indirect table outside it, and ring addresses
outside it. Each time it must refuse (DEVICE_NEEDS_RESET, value 64, plus a
configuration change interrupt) and provably touch nothing outside: guest
RAM is a separate mapping absent from the device's memory map and fenced
by PROT_NONE guard pages, and a byte-for-byte comparison shows it and the
unused tail of the bounce region unchanged (and the disk unwritten).
"""
import struct

import pytest

from device_ref.device.features import DEVICE_NEEDS_RESET
from device_ref.driver.errors import DeviceNeedsReset
from device_ref.ring.hostile import Desc
from device_ref.ring import DESC_F_INDIRECT, DESC_F_NEXT, DESC_F_WRITE
from device_ref.transport import QueueConfig
from device_ref.transport_inproc import RAM_BASE

from .harness import BOUNCE, Combo, blk_pair

PATTERN = 0xA5
TAIL = 8192  # the last bytes of the bounce region, never allocated in these tests


def prepared(packed: bool):
    dev, t, drv, storage = blk_pair(Combo(packed=packed, indirect=True, swiotlb=True))
    drv.init()
    for r in t.ram.regions:
        if r.kind == "ram":
            r.buffer.view[:] = bytes([PATTERN]) * r.size
        else:
            r.buffer.view[r.size - TAIL:] = bytes([PATTERN]) * TAIL
    return dev, t, drv, storage


def outside_state(t, storage):
    ram = t.ram.snapshot("ram")
    bounce = next(r for r in t.ram.regions if r.kind == "bounce")
    return ram, bytes(bounce.buffer.view[bounce.size - TAIL:]), bytes(storage.data)


def pool_bytes(drv, data):
    a = drv.dma.alloc(len(data))
    drv.t.memory.write(a.addr, data)
    return a.addr


BAD_RANGES = {
    "outside": (RAM_BASE + 0x2000, 512),
    "straddling_end": (BOUNCE.end - 256, 512),
    "overflowing": (2**64 - 256, 512),
    "too_long": (BOUNCE.base + 0x100, 0xFFFF_FFFF),
    "just_below": (BOUNCE.base - 512, 512),
}


@pytest.mark.parametrize("packed", [False, True], ids=["split", "packed"])
@pytest.mark.parametrize("name", sorted(BAD_RANGES))
@pytest.mark.parametrize("direction", ["device_writes", "device_reads"])
def test_descriptor_outside_region_is_refused_untouched(packed, name, direction):
    dev, t, drv, storage = prepared(packed)
    # The device's map holds the bounce region and nothing else.
    assert [(r.gpa, r.size) for r in dev.memory.regions] == [(BOUNCE.base, BOUNCE.size)]
    before = outside_state(t, storage)
    addr, ln = BAD_RANGES[name]
    status = pool_bytes(drv, b"\xee")
    if direction == "device_writes":   # VIRTIO_BLK_T_IN into the bad range
        req = drv.submit_segments(0, [(pool_bytes(drv, struct.pack("<IIQ", 0, 0, 0)), 16)],
                                  [(addr, ln), (status, 1)])
    else:                              # VIRTIO_BLK_T_OUT from the bad range
        req = drv.submit_segments(0, [(pool_bytes(drv, struct.pack("<IIQ", 1, 0, 0)), 16), (addr, ln)],
                                  [(status, 1)])
    assert dev.read_status() & DEVICE_NEEDS_RESET
    assert t.host.total.config >= 1                    # the driver was told
    assert drv.t.memory.read(status, 1) == b"\xee"     # no status: the request was refused whole
    assert outside_state(t, storage) == before
    with pytest.raises(DeviceNeedsReset):
        drv.wait(req)
    assert drv.state == "reset" and t.read_status() == 0
    t.close()


@pytest.mark.parametrize("packed", [False, True], ids=["split", "packed"])
@pytest.mark.parametrize("table_at", ["ram", "straddling_end"])
def test_indirect_table_outside_region_is_refused_untouched(packed, table_at):
    dev, t, drv, storage = prepared(packed)
    raw = drv.take_raw(0)
    table = RAM_BASE + 0x3000 if table_at == "ram" else BOUNCE.end - 16
    before = outside_state(t, storage)
    if packed:
        raw.add([Desc(table, 32, DESC_F_INDIRECT, 0)])
    else:
        raw.write_desc(0, Desc(table, 32, DESC_F_INDIRECT))
        raw.publish([0])
    t.notify(0)
    assert dev.read_status() & DEVICE_NEEDS_RESET
    assert outside_state(t, storage) == before
    assert raw.take_used() == []
    t.close()


@pytest.mark.parametrize("area", ["desc", "driver", "device"])
def test_ring_addresses_outside_region_are_refused_untouched(area):
    dev, t, drv, storage = blk_pair(Combo(swiotlb=True))
    for r in t.ram.regions:
        if r.kind == "ram":
            r.buffer.view[:] = bytes([PATTERN]) * r.size
    before = t.ram.snapshot("ram")
    t.write_status(1)
    t.write_status(3)
    t.write_driver_features((1 << 32) | (1 << 44))
    t.write_status(11)
    assert t.read_status() == 11
    inside = {"desc": BOUNCE.base, "driver": BOUNCE.base + 0x1000, "device": BOUNCE.base + 0x2000}
    inside[area] = RAM_BASE + 0x1000
    t.set_queue(0, QueueConfig(8, inside["desc"], inside["driver"], inside["device"]))
    t.enable_queue(0)
    t.write_status(15)
    assert t.read_status() & DEVICE_NEEDS_RESET
    assert dev.queues[0].ring is None
    t.notify(0)          # a kick changes nothing once the device has given up
    assert t.ram.snapshot("ram") == before
    t.close()


def test_ring_straddling_region_end_is_refused():
    dev, t, drv, storage = blk_pair(Combo(swiotlb=True))
    t.write_status(1)
    t.write_status(3)
    t.write_driver_features((1 << 32) | (1 << 44))
    t.write_status(11)
    # A used ring of 8 entries needs 6 + 64 bytes; start it 32 bytes before the end.
    t.set_queue(0, QueueConfig(8, BOUNCE.base, BOUNCE.base + 0x1000, BOUNCE.end - 32))
    t.enable_queue(0)
    t.write_status(15)
    assert t.read_status() & DEVICE_NEEDS_RESET
    t.close()


def test_without_swiotlb_the_device_map_is_ram_only():
    dev, t, drv, _ = blk_pair(Combo(swiotlb=False))
    drv.init()
    assert [(r.gpa, r.size) for r in dev.memory.regions] == t.ram_ranges()
    assert not dev.memory.contains(BOUNCE.base, 1)
    t.close()


def test_a_good_chain_next_to_bad_ones_still_works_after_reset():
    dev, t, drv, storage = prepared(False)
    drv.submit_segments(0, [(pool_bytes(drv, struct.pack("<IIQ", 0, 0, 0)), 16)],
                        [(RAM_BASE, 512), (pool_bytes(drv, b"\0"), 1)])
    with pytest.raises(DeviceNeedsReset):
        drv.wait(drv.submit_read(0, 512))
    drv.init()
    drv.write(0, b"ok" * 256)
    assert drv.read(0, 512) == b"ok" * 256
    assert DESC_F_NEXT and DESC_F_WRITE  # flags exported by the ring core
    t.close()


def test_device_restricts_itself_when_a_transport_hands_it_everything():
    """A transport that (wrongly) maps all guest memory for the device: with
    SWIOTLB negotiated the device still uses only the bounce region."""
    from device_ref.device.device_queue import build_memory_map

    from device_ref.transport_inproc import InProcTransport

    class Leaky(InProcTransport):
        def _device_map(self):
            return build_memory_map(self.ram.regions)   # RAM and bounce region

    dev, _, _, storage = blk_pair(Combo(swiotlb=True))
    t = Leaky(dev)
    from device_ref.driver.blk import BlkDriver
    from device_ref.driver.core import DriverOptions
    drv = BlkDriver(t, DriverOptions(features=Combo(swiotlb=True).mask())).init()
    assert [(r.gpa, r.size) for r in dev.memory.regions] == [(BOUNCE.base, BOUNCE.size)]
    for r in t.ram.regions:
        if r.kind == "ram":
            r.buffer.view[:] = bytes([PATTERN]) * r.size
    before = t.ram.snapshot("ram")
    req = drv.submit_segments(0, [(pool_bytes(drv, struct.pack("<IIQ", 0, 0, 0)), 16)],
                              [(RAM_BASE + 0x2000, 512), (pool_bytes(drv, b"\0"), 1)])
    assert dev.read_status() & DEVICE_NEEDS_RESET
    assert t.ram.snapshot("ram") == before
    with pytest.raises(DeviceNeedsReset):
        drv.wait(req)
    t.close()


def test_guard_pages_really_fault():
    """The fence is real: touching the byte just past a region (or just
    before it) kills a process with SIGSEGV, so a device that strayed there
    in the tests above would have crashed the test run, not passed it."""
    import subprocess
    import sys
    code = ("import ctypes; from device_ref.guest_ram import GuardedBuffer as G; "
            "b = G(1 << 20); b.view[:] = b'x' * (1 << 20); "
            "assert ctypes.string_at(b.host_address + (1 << 20) - 1, 1) == b'x'; "
            "print('inside ok', flush=True); ctypes.string_at(b.host_address + {off}, 1)")
    for off in ("(1 << 20)", "-1"):
        r = subprocess.run([sys.executable, "-c", code.format(off=off)], capture_output=True,
                           text=True, timeout=60)
        assert r.stdout.strip() == "inside ok"
        assert r.returncode == -11, (off, r.returncode, r.stderr[-300:])
