"""Device rules from the spec's "Device Status Field" and "Feature Bits"
requirements, checked through the device model and the in-process
transport. Values: ACKNOWLEDGE 1, DRIVER 2, DRIVER_OK 4, FEATURES_OK 8,
DEVICE_NEEDS_RESET 64, FAILED 128; VERSION_1 is bit 32."""
import struct

import pytest

from device_ref.ring.hostile import Desc
from device_ref.ring import DESC_F_NEXT, DESC_F_WRITE
from device_ref.transport import QueueConfig, TransportError

from .harness import Combo, blk_pair

V1 = 1 << 32


def bring_up_split(t, size=8, base=0x1000_0000):
    """Driver steps by hand, split ring at base (desc), +0x1000 (avail), +0x2000 (used)."""
    t.write_status(1)
    t.write_status(3)
    t.write_driver_features(V1)
    t.write_status(11)
    t.set_queue(0, QueueConfig(size, base, base + 0x1000, base + 0x2000))
    t.enable_queue(0)


def put_read_request(t, base=0x1000_0000):
    """One IN request, sector 0, 512 bytes, in descriptors 0-2; avail idx 1."""
    mem = t.memory
    mem.write(base + 0x3000, struct.pack("<IIQ", 0, 0, 0))
    descs = [(base + 0x3000, 16, DESC_F_NEXT, 1), (base + 0x4000, 512, DESC_F_NEXT | DESC_F_WRITE, 2),
             (base + 0x5000, 1, DESC_F_WRITE, 0)]
    for i, (a, n, f, nx) in enumerate(descs):
        mem.write(base + 16 * i, struct.pack("<QIHH", a, n, f, nx))
    mem.write(base + 0x1000 + 4, struct.pack("<H", 0))
    mem.write(base + 0x1000 + 2, struct.pack("<H", 1))


def used_idx(t, base=0x1000_0000):
    return struct.unpack("<H", t.memory.read(base + 0x2000 + 2, 2))[0]


def test_no_buffers_consumed_before_driver_ok():
    dev, t, _, _ = blk_pair(Combo())
    bring_up_split(t)
    put_read_request(t)
    t.notify(0)
    assert used_idx(t) == 0 and dev.counters.requests == 0
    assert t.take_interrupts().queues == {}
    t.write_status(15)
    t.notify(0)
    assert used_idx(t) == 1
    # used element 0: id 0 (the head), len 513 (512 data + status byte)
    assert struct.unpack("<II", t.memory.read(0x1000_2000 + 4, 8)) == (0, 513)
    assert t.memory.read(0x1000_5000, 1) == b"\x00"
    t.close()


def test_driver_ok_without_features_ok_is_not_latched():
    dev, t, _, _ = blk_pair(Combo())
    t.write_status(1)
    t.write_status(3)
    t.write_status(7)
    assert t.read_status() == 3
    assert any(e.kind == "violation" for e in dev.events)
    t.close()


def test_features_written_after_features_ok_are_ignored():
    dev, t, _, _ = blk_pair(Combo())
    t.write_status(1)
    t.write_status(3)
    t.write_driver_features(V1)
    t.write_status(11)
    t.write_driver_features(V1 | (1 << 28))
    assert dev.driver_features() == V1 and dev.negotiated == V1
    t.close()


def test_needs_reset_sends_config_interrupt_only_after_driver_ok():
    dev, t, _, _ = blk_pair(Combo())
    bring_up_split(t)
    dev.needs_reset("before DRIVER_OK")
    assert t.read_status() == 11 | 64
    assert t.take_interrupts().config == 0
    t.write_status(0)
    bring_up_split(t)
    t.write_status(15)
    dev.needs_reset("after DRIVER_OK")
    assert t.read_status() == 15 | 64
    assert t.take_interrupts().config == 1
    # Nothing is processed while NEEDS_RESET holds.
    put_read_request(t)
    t.notify(0)
    assert used_idx(t) == 0
    t.close()


def test_failed_stops_processing():
    dev, t, _, _ = blk_pair(Combo())
    bring_up_split(t)
    t.write_status(15)
    t.write_status(15 | 128)
    put_read_request(t)
    t.notify(0)
    assert used_idx(t) == 0 and t.read_status() == 15 | 128
    t.close()


def test_queue_size_above_maximum_is_refused():
    dev, t, _, _ = blk_pair(Combo())
    with pytest.raises(TransportError):
        t.set_queue(0, QueueConfig(dev.queue_max_size(0) * 2, 0x1000_0000, 0x1000_1000, 0x1000_2000))
    with pytest.raises(TransportError):
        t.set_queue(1, QueueConfig(8, 0x1000_0000, 0x1000_1000, 0x1000_2000))
    t.close()


def test_malformed_chain_sets_needs_reset():
    dev, t, _, _ = blk_pair(Combo())
    bring_up_split(t)
    t.write_status(15)
    # descriptor 0 chains to itself: a loop
    t.memory.write(0x1000_0000, struct.pack("<QIHH", 0x1000_3000, 16, DESC_F_NEXT, 0))
    t.memory.write(0x1000_1000 + 2, struct.pack("<H", 1))
    t.notify(0)
    assert t.read_status() & 64 and used_idx(t) == 0
    assert t.take_interrupts().config == 1
    t.close()


def test_reset_keeps_device_owned_config_but_forgets_driver_state():
    dev, t, drv, _ = blk_pair(Combo(), sectors=64)
    drv.init()
    dev.resize(32)
    t.write_status(0)
    assert struct.unpack("<Q", t.read_config(0, 8))[0] == 32   # capacity is the device's
    assert t.read_status() == 0 and dev.negotiated == 0
    t.close()


def test_in_order_device_may_return_a_batch_as_one_used_entry():
    dev, t, drv, storage = blk_pair(Combo(packed=False, in_order=True))
    dev.coalesce_in_order = True
    drv.init()
    raw_notify = t.notify
    t.notify = lambda q: None          # hold kicks so the device sees one batch
    reqs = [drv.submit_write(i, bytes([i + 1]) * 512) for i in range(6)]
    t.notify = raw_notify
    t.notify(0)
    for i, r in enumerate(reqs):
        drv.wait(r)
        assert drv.status_of(r) == 0
    assert storage.data[5 * 512] == 6
    used = drv.queue_config(0).device
    assert struct.unpack("<H", t.memory.read(used + 2, 2))[0] == 6
    # One used element for the batch: the last buffer's head (6 chains of
    # 3 descriptors in ring order: heads 0, 3, ..., 15) and its length 1;
    # the next element was never written.
    assert struct.unpack("<II", t.memory.read(used + 4, 8)) == (15, 1)
    assert struct.unpack("<II", t.memory.read(used + 12, 8)) == (0, 0)
    t.close()


@pytest.mark.parametrize("packed", [False, True])
def test_raw_layer_reads_back_what_the_device_wrote(packed):
    dev, t, drv, _ = blk_pair(Combo(packed=packed))
    drv.init()
    raw = drv.take_raw(0)
    hdr, data, st = drv.dma.alloc(16), drv.dma.alloc(512), drv.dma.alloc(1)
    t.memory.write(hdr.addr, struct.pack("<IIQ", 8, 0, 0))      # GET_ID
    chain = [Desc(hdr.addr, 16, DESC_F_NEXT, 3), Desc(data.addr, 20, DESC_F_NEXT | DESC_F_WRITE, 4),
             Desc(st.addr, 1, DESC_F_WRITE, 0)]
    if packed:
        raw.add([Desc(d.addr, d.len, d.flags, 3) for d in chain])
        t.notify(0)
        assert [(i, ln) for i, ln, _f in raw.take_used({3: 3})] == [(3, 21)]
    else:
        for i, d in enumerate(chain):
            raw.write_desc(3 + i, Desc(d.addr, d.len, d.flags, 4 + i if i < 2 else 0))
        raw.publish([3])
        t.notify(0)
        assert raw.take_used() == [(3, 21)]
    assert t.memory.read(st.addr, 1) == b"\x00"
    with pytest.raises(Exception, match="raw layer"):
        drv.read(0, 512)
    t.close()
