"""The reference driver against the reference devices, in process, across
ring layouts and ring features, with and without VIRTIO_F_SWIOTLB."""
import random
import struct

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from device_ref.devices.blk import BlkOptions, FileStorage, BlkDevice
from device_ref.driver.errors import BlkIOError, NegotiationFailed
from device_ref.driver.core import DriverOptions
from device_ref.driver.blk import BlkDriver
from device_ref.transport_inproc import InProcTransport

from .harness import BOUNCE, Combo, blk_pair, combos, rng_pair

COMBOS = combos()


def bit(f, n):
    return f >> n & 1


@pytest.mark.parametrize("combo", COMBOS, ids=str)
def test_blk_negotiates_exactly_the_combination(combo):
    dev, t, drv, _ = blk_pair(combo)
    drv.init()
    assert bit(drv.negotiated, 34) == combo.packed
    assert bit(drv.negotiated, 28) == combo.indirect
    assert bit(drv.negotiated, 29) == combo.event_idx
    assert bit(drv.negotiated, 35) == combo.in_order
    assert bit(drv.negotiated, 44) == combo.swiotlb
    assert bit(drv.negotiated, 32) == 1
    assert dev.negotiated == drv.negotiated
    # ACKNOWLEDGE(1), DRIVER(2), FEATURES_OK(8), DRIVER_OK(4), in that order.
    assert drv.status_log == [1, 3, 11, 15]
    assert t.read_status() == 15
    t.close()


@pytest.mark.parametrize("combo", COMBOS, ids=str)
def test_blk_used_lengths_and_status(combo):
    dev, t, drv, storage = blk_pair(combo, sectors=64)
    drv.init()
    w = drv.wait(drv.submit_write(2, b"\x42" * 1024, segments=2))
    assert w.used_len == 1 and drv.status_of(w) == 0           # only the status byte written
    r = drv.wait(drv.submit_read(2, 4096, segments=4))
    assert r.used_len == 4097 and drv.status_of(r) == 0       # data plus status
    assert r.data[:1024] == b"\x42" * 1024
    bad = drv.wait(drv.submit_read(63, 1024))                   # sectors 63..64: past the end
    assert drv.status_of(bad) == 1 and bad.used_len == 1        # VIRTIO_BLK_S_IOERR
    g = drv.wait(drv.submit(0, [struct.pack("<IIQ", 8, 0, 0)], [20, 1]))
    assert g.used_len == 21 and g.data[:14] == b"device-ref-blk"
    u = drv.wait(drv.submit(0, [struct.pack("<IIQ", 77, 0, 0)], [1]))
    assert drv.status_of(u) == 2                                # VIRTIO_BLK_S_UNSUPP
    with pytest.raises(BlkIOError):
        drv.read(64, 512)
    assert storage.data[1024:2048] == b"\x42" * 1024
    t.close()


@pytest.mark.parametrize("combo", COMBOS, ids=str)
def test_rng_fills_and_reports_length(combo):
    dev, t, drv = rng_pair(combo, seed=11)
    drv.init()
    got = drv.read(100) + drv.read(28)
    assert got == random.Random(11).randbytes(128)
    t.close()


@pytest.mark.parametrize("combo", [c for c in COMBOS if c.indirect or c.swiotlb], ids=str)
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=st.lists(st.tuples(st.integers(0, 2047), st.integers(1, 64), st.integers(1, 6),
                              st.integers(0, 2**32)), min_size=1, max_size=8))
def test_blk_data_round_trips_at_random_offsets(combo, ops):
    dev, t, drv, storage = blk_pair(combo, sectors=2048)
    drv.init()
    model = bytearray(2048 * 512)
    try:
        for sector, nsect, segs, seed in ops:
            rnd = random.Random(seed)
            nsect = min(nsect, 2048 - sector)
            data = rnd.randbytes(nsect * 512)
            drv.write(sector, data, segments=min(segs, nsect * 512))
            model[sector * 512:(sector + nsect) * 512] = data
            assert drv.read(sector, nsect * 512, segments=segs) == data
        assert bytes(storage.data) == bytes(model)
        # No leak: everything the driver allocated for requests came back.
        assert drv.outstanding() == 0
        assert drv.dma.in_use == 3  # the three ring areas only
    finally:
        t.close()


def test_swiotlb_puts_rings_and_buffers_in_the_bounce_region():
    seen = []

    class Spy(BlkDevice):
        def handle(self, queue, io):
            seen.extend((s.gpa, s.len) for s in io.readable + io.writable)
            return super().handle(queue, io)

    for swiotlb in (True, False):
        seen.clear()
        dev, t, drv, _ = blk_pair(Combo(indirect=True, swiotlb=swiotlb), device_cls=Spy)
        drv.init()
        g = drv.alloc_guest(4096)            # caller RAM: bounced under SWIOTLB
        t.memory.write(g.addr, b"\x07" * 4096)
        drv.wait(drv.submit_write(0, g))
        drv.wait(drv.submit_read(0, g))
        assert t.memory.read(g.addr, 4096) == b"\x07" * 4096
        cfg = dev.queues[0].config
        addrs = [(cfg.desc, 16), (cfg.driver, 2), (cfg.device, 4)] + seen
        inside = [BOUNCE.contains(a, n) for a, n in addrs]
        assert all(inside) if swiotlb else not any(inside), (swiotlb, addrs)
        if not swiotlb:
            assert (g.addr, 4096) in seen      # zero copy: the device saw the caller's RAM
        t.close()


def test_pci_and_mmio_bounce_descriptions_resolve_to_the_same_region():
    for style in ("pci", "mmio"):
        dev, _, _, _ = blk_pair(Combo(swiotlb=True))
        t = InProcTransport(dev, bounce_style=style)
        drv = BlkDriver(t, DriverOptions()).init()
        assert drv.dma.region == BOUNCE
        drv.write(1, b"z" * 512)
        assert drv.read(1, 512) == b"z" * 512
        t.close()
    raw = InProcTransport(blk_pair(Combo(swiotlb=True))[0]).bounce_description().cap
    # virtio_pci_cap64: cap_vndr 0x09, cap_len 24, cfg_type 10 at byte 3,
    # bar at 4, offset le32 at 8, length le32 at 12, offset_hi at 16, length_hi at 20.
    assert raw[0] == 0x09 and raw[2] == 24 and raw[3] == 10 and len(raw) == 24
    assert struct.unpack_from("<IIII", raw, 8) == (0x1000, 1 << 20, 0, 0)


def test_device_requiring_swiotlb_refuses_features_ok_without_it():
    dev, t, drv, _ = blk_pair(Combo(swiotlb=False), require_swiotlb=True)
    with pytest.raises(NegotiationFailed):
        drv.init()
    st_ = t.read_status()
    assert not st_ & 8 and st_ & 128          # FEATURES_OK not kept; driver set FAILED
    assert dev.events[-1].kind == "refused_features" or any(e.kind == "refused_features" for e in dev.events)
    # With the feature the same device works.
    drv2 = BlkDriver(t, DriverOptions(features=Combo(swiotlb=True).mask())).init()
    drv2.write(0, b"q" * 512)
    t.close()


def test_features_not_offered_are_never_accepted():
    dev, t, drv, _ = blk_pair(Combo(packed=True), offer=~(1 << 34))
    drv.init()
    assert not bit(drv.negotiated, 34) and drv.layout == "split"
    dev.write_status(0)
    dev.write_status(1)
    dev.write_status(3)
    dev.set_driver_features((1 << 32) | (1 << 34))   # a driver accepting an unoffered bit
    dev.write_status(11)
    assert dev.read_status() == 3                     # FEATURES_OK did not stick
    t.close()


def test_reset_forgets_rings_indices_and_features():
    dev, t, drv, storage = blk_pair(Combo(packed=True, event_idx=True, swiotlb=True))
    drv.init()
    drv.write(5, b"k" * 512)
    t.write_status(0)
    assert dev.read_status() == 0 and dev.negotiated == 0 and dev.driver_features() == 0
    assert all(q.ring is None and q.config is None and not q.enabled for q in dev.queues)
    # Re-initialise from scratch, this time split without SWIOTLB: the old
    # packed indices must not leak into the new rings.
    drv2 = BlkDriver(t, DriverOptions(features=Combo().mask())).init()
    assert drv2.read(5, 512) == b"k" * 512
    t.close()


def test_config_change_is_seen_with_new_generation():
    dev, t, drv, _ = blk_pair(Combo(), sectors=64)
    drv.init()
    gen = t.config_generation()
    dev.resize(32)
    assert t.config_generation() == (gen + 1) & 0xFF
    drv.check()
    assert drv.capacity == 32
    with pytest.raises(BlkIOError):
        drv.read(40, 512)       # beyond the new capacity
    t.close()


def test_threaded_device_completes_requests():
    dev, t, drv, _ = blk_pair(Combo(packed=True, event_idx=True), threaded=True)
    drv.init()
    for i in range(20):
        drv.write(i, bytes([i]) * 512)
    assert all(drv.read(i, 512) == bytes([i]) * 512 for i in range(20))
    t.close()


def test_file_backed_device_and_flush(tmp_path):
    path = tmp_path / "disk.img"
    storage = FileStorage(str(path), size=64 * 512)
    dev = BlkDevice(storage, BlkOptions())
    t = InProcTransport(dev)
    drv = BlkDriver(t).init()
    drv.write(3, b"F" * 1024)
    drv.flush()
    storage.close()
    assert path.read_bytes()[3 * 512:5 * 512] == b"F" * 1024
    t.close()


def test_many_requests_in_flight_then_collected():
    dev, t, drv, _ = blk_pair(Combo(packed=True, in_order=True))
    drv.init()
    reqs = [drv.submit_write(i, bytes([i]) * 512) for i in range(40)]
    for r in reqs:
        drv.wait(r)
        assert drv.status_of(r) == 0
    assert drv.outstanding() == 0
    t.close()


def test_bounce_pool_exhaustion_is_a_clear_error_and_recovers():
    from device_ref.swiotlb import PoolExhausted
    from device_ref.transport import BounceRegion
    from device_ref.driver.core import DriverOptions as Opts
    small = BounceRegion(0x8000_1000, 64 * 1024)
    dev = BlkDevice(__import__("device_ref.devices.blk", fromlist=["MemoryStorage"]).MemoryStorage(1 << 20),
                    BlkOptions(), bounce=small)
    t = InProcTransport(dev)
    drv = BlkDriver(t, Opts(features=Combo(swiotlb=True).mask())).init()
    before = drv.dma.in_use
    with pytest.raises(PoolExhausted, match="no .*-byte run free"):
        drv.submit_write(0, b"x" * (128 * 1024))       # larger than the whole region
    assert drv.dma.in_use == before                     # nothing leaked
    # Many requests left uncollected fill the pool; submit collects finished
    # ones to make room instead of failing or overlapping.
    reqs = [drv.submit_write(i % 64, bytes([i]) * 4096) for i in range(200)]
    # 200 x 4 KiB cannot all fit in 64 KiB: most were collected along the way.
    assert sum(r.done for r in reqs) > 150
    for r in reqs:
        drv.wait(r)
        assert drv.status_of(r) == 0
    assert drv.read(7, 512) == bytes([199]) * 512        # the last writer of sector 7
    assert drv.dma.in_use == before
    t.close()


def test_vhost_style_start_without_status_register():
    dev, t, drv, _ = blk_pair(Combo())
    assert dev.start((1 << 32) | (1 << 44)) is True
    assert dev.read_status() == 15 and dev.negotiated == (1 << 32) | (1 << 44)
    dev.reset()
    assert dev.start(1 << 28) is False                   # without VERSION_1: refused
    assert dev.read_status() == 3
    t.close()


@pytest.mark.parametrize("combo", [Combo(), Combo(packed=True), Combo(True, True, True, True, True),
                                   Combo(False, True, True, True, True)], ids=str)
def test_small_queue_wraps_many_laps(combo):
    """A queue of 8 entries for 600 requests: every descriptor slot and the
    packed wrap counters go round dozens of times."""
    dev, t, drv, _ = blk_pair(combo)
    drv.opts.queue_size = 8
    drv.init()
    assert drv.queue_config(0).size == 8
    for i in range(300):
        drv.write(i % 64, bytes([i & 0xFF]) * 1024, segments=2)
        assert drv.read(i % 64, 1024, segments=2) == bytes([i & 0xFF]) * 1024
    t.close()


@pytest.mark.slow
@pytest.mark.parametrize("event_idx", [False, True])
def test_split_indices_wrap_past_65535(event_idx):
    """More than 2**16 requests: the split ring's 16-bit indices wrap, and the
    EVENT_IDX arithmetic must still decide kicks and interrupts right."""
    dev, t, drv = rng_pair(Combo(event_idx=event_idx), seed=3)
    drv.opts.queue_size = 16
    drv.init()
    expected = random.Random(3)
    for _ in range(66_000):
        assert drv.read(4) == expected.randbytes(4)
    assert dev.counters.requests == 66_000
    t.close()
