"""Our front-end and reference driver against our own back-end, over a real
socket: split and packed rings, with and without VIRTIO_F_SWIOTLB."""
from __future__ import annotations

import random

import pytest

from device_ref.devices.blk import BlkDevice, MemoryStorage
from device_ref.devices.rng import RngDevice
from device_ref.driver.blk import BlkDriver
from device_ref.driver.core import ALL, DriverOptions
from device_ref.driver.rng import RngDriver
from device_ref.transport import BounceRegion
from device_ref.vhost_user.frontend import VhostUserTransport

from .served import Served

F_INDIRECT, F_EVENT_IDX, F_VERSION_1, F_RING_PACKED, F_SWIOTLB = 28, 29, 32, 34, 44
ID_BLOCK, ID_ENTROPY = 2, 4
BOUNCE = BounceRegion(0x1_0000_0000, 4 << 20)
DISK = 4 << 20


@pytest.fixture
def served(sockdir):
    started = []

    def start(factory, name="dev.sock"):
        s = Served(str(sockdir / name), factory)
        started.append(s)
        return s
    yield start
    for s in started:
        s.close()


def _mask(packed: bool) -> int:
    return ALL if packed else ALL & ~(1 << F_RING_PACKED)


@pytest.mark.parametrize("swiotlb", [False, True], ids=["shared-ram", "swiotlb"])
@pytest.mark.parametrize("packed", [False, True], ids=["split", "packed"])
def test_blk_driver_through_our_backend(served, packed, swiotlb):
    storage = MemoryStorage(DISK)
    bounce = BOUNCE if swiotlb else None
    s = served(lambda: BlkDevice(storage, bounce=bounce))
    t = VhostUserTransport(s.server.path, ID_BLOCK, bounce=bounce, ram_size=8 << 20)
    drv = BlkDriver(t, DriverOptions(features=_mask(packed), queue_size=64))
    try:
        drv.init()
        assert bool(drv.negotiated >> F_RING_PACKED & 1) == packed
        assert bool(drv.negotiated >> F_SWIOTLB & 1) == swiotlb
        assert drv.capacity == DISK // 512
        assert drv.get_id().rstrip(b"\0") == b"device-ref-blk"
        rnd = random.Random(7)
        writes = {}
        for sector in (0, 17, 1000, DISK // 512 - 16):  # 16 sectors each, no overlap
            data = rnd.randbytes(8192)
            drv.write(sector, data, segments=3)
            writes[sector] = data
        for sector, data in writes.items():
            assert drv.read(sector, len(data), segments=2) == data
            assert storage.read(sector * 512, len(data)) == data
        # What the back-end was given to map: with SWIOTLB only the bounce
        # region; otherwise ordinary RAM (and the bounce region, unused).
        session = s.server.session
        assert session is not None and session.memory is not None
        shared = sorted((r.guest_addr, r.size) for r in session.memory.regions)
        if swiotlb:
            assert shared == [(BOUNCE.base, BOUNCE.size)]
        else:
            assert (0, 8 << 20) in shared
        drv.shutdown()
    finally:
        t.close()


@pytest.mark.parametrize("packed", [False, True], ids=["split", "packed"])
def test_rng_driver_reads_the_seeded_stream(served, packed):
    s = served(lambda: RngDevice(seed=1234))
    t = VhostUserTransport(s.server.path, ID_ENTROPY, ram_size=4 << 20)
    drv = RngDriver(t, DriverOptions(features=_mask(packed)))
    try:
        drv.init()
        assert bool(drv.negotiated >> F_RING_PACKED & 1) == packed
        # The device fills each buffer from random.Random(seed), in order.
        expect = random.Random(1234)
        for n in (1, 64, 500):
            assert drv.read(n) == expect.randbytes(n)
        drv.shutdown()
    finally:
        t.close()


def test_second_front_end_is_served_after_the_first(served):
    storage = MemoryStorage(DISK)
    s = served(lambda: BlkDevice(storage))
    for round_ in range(3):
        t = VhostUserTransport(s.server.path, ID_BLOCK)
        drv = BlkDriver(t)
        try:
            drv.init()
            if round_:
                assert drv.read(64, 512) == bytes([round_ - 1]) * 512  # the previous one's data
            drv.write(64, bytes([round_]) * 512)
            drv.shutdown()
        finally:
            t.close()
    assert s.server.stats.connections == 3
    assert s.server.stats.errors == []


@pytest.mark.parametrize("packed", [False, True], ids=["split", "packed"])
def test_backend_keeps_its_place_across_memory_table_and_stop_start(served, packed):
    """A new SET_MEM_TABLE while rings run, and GET_VRING_BASE followed by
    SET_VRING_BASE, must both continue at the ring position reached, or the
    device would re-read old descriptors."""
    storage = MemoryStorage(DISK)
    s = served(lambda: BlkDevice(storage))
    t = VhostUserTransport(s.server.path, ID_BLOCK, ram_size=8 << 20)
    drv = BlkDriver(t, DriverOptions(features=_mask(packed), queue_size=16))
    try:
        drv.init()
        rnd = random.Random(3)

        def io(rounds: int) -> None:
            for _ in range(rounds):
                sector = rnd.randrange(DISK // 512 - 8)
                data = rnd.randbytes(4096)
                drv.write(sector, data, segments=2)
                assert drv.read(sector, 4096) == data

        io(11)  # 22 requests: past the end of a 16-entry ring, so wrap counters moved
        t.resend_memory_table()
        io(5)
        bases = t.stop_queues()
        if packed:
            # 32 buffers of 2-4 descriptors each went round a 16-entry ring
            assert bases[0] >> 16 == bases[0] & 0xFFFF
        else:
            assert bases[0] == 32  # next available index after 32 requests
        t.start_queues(bases)
        io(5)
        assert s.server.stats.errors == []
        drv.shutdown()
    finally:
        t.close()
