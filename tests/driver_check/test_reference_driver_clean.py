"""The checking device must not cry wolf: the reference driver, which
follows every rule, leaves no violation on either layout, with and without
VIRTIO_F_SWIOTLB; and the checking device serves exactly as the plain one."""
from __future__ import annotations

import pytest

from conformance.driver_mode import workload
from device_ref.devices.blk import BlkDevice, BlkOptions, MemoryStorage
from device_ref.driver.blk import BlkDriver
from device_ref.driver.core import DriverOptions
from device_ref.transport_inproc import InProcTransport

from .rigs import BOUNCE, DISK_SECTORS, F_RING_PACKED, make


@pytest.mark.parametrize("swiotlb", [False, True], ids=["ram", "swiotlb"])
@pytest.mark.parametrize("packed", [False, True], ids=["split", "packed"])
@pytest.mark.parametrize("kind", ["blk", "rng"])
def test_reference_driver_leaves_no_violation(kind, packed, swiotlb):
    r = make(kind, packed=packed, bounce=BOUNCE if swiotlb else None)
    try:
        assert r.device.layout == ("packed" if packed else "split")
        assert r.device.swiotlb == swiotlb
        workload(r.driver, kind, 3 * 64 + 5)   # several laps of a 64-entry ring
        r.device.finish()
        assert r.log.violations == [], [(v.property, v.detail) for v in r.log.violations]
        q = r.log.queues[0]
        assert q.chains == 3 * 64 + 5 and q.compared == q.chains
        if kind == "blk":
            assert q.indirect_chains > 0   # multi-segment requests went indirect
    finally:
        r.close()


def test_raw_direct_chains_are_clean():
    """Direct (non-indirect) chains built by hand the way the rules want them."""
    from .rigs import split_read_chain
    r = make()
    try:
        raw = r.raw()
        for lap in range(3):
            for k in range(0, 60, 3):
                split_read_chain(r, raw, first=k)
                raw.publish([k])
                r.kick()
            assert len(raw.take_used()) == 20
        r.device.finish()
        assert r.log.violations == []
        assert r.log.queues[0].descriptors == 3 * 20 * 3
    finally:
        r.close()


@pytest.mark.parametrize("packed", [False, True], ids=["split", "packed"])
def test_checking_device_serves_like_the_plain_one(packed):
    """Same requests, same results: disk contents, used lengths, interrupts."""
    offer = ~0 if packed else ~(1 << F_RING_PACKED)
    seen = []
    for checking in (False, True):
        if checking:
            r = make("blk", packed=packed)
            dev, t, drv = r.device, r.transport, r.driver
        else:
            dev = BlkDevice(MemoryStorage(DISK_SECTORS * 512), BlkOptions(), offer=offer)
            t = InProcTransport(dev, ram_size=4 << 20)
            drv = BlkDriver(t, DriverOptions(queue_size=64))
            drv.init()
        try:
            workload(drv, "blk", 100)
            seen.append((bytes(dev.storage.data), dev.counters.requests,
                         dev.counters.queue_interrupts, dev.negotiated, dev.status))
        finally:
            t.close()
    assert seen[0] == seen[1]
