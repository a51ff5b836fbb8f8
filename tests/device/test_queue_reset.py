"""Resetting one queue alone (VIRTIO_F_RING_RESET) through the reference
driver, transport and device: in-flight requests fail, the device keeps
running, the queue works again on fresh rings, and with queue encryption
it carries a fresh key whose counters start at 0."""
from __future__ import annotations

from dataclasses import replace

import pytest

from device_ref.device.features import DRIVER_OK, F_RING_RESET, bit
from device_ref.driver.errors import DriverError, DriverNotReady
from device_ref.qenc import enable_device, enable_driver
from device_ref.transport import TransportError

from .harness import Combo, blk_pair


def offering_ring_reset(combo: Combo, **kw):
    dev, t, drv, storage = blk_pair(combo, **kw)
    dev.rules = replace(dev.rules, offered=dev.rules.offered | bit(F_RING_RESET))
    return dev, t, drv, storage


@pytest.mark.parametrize("packed", [False, True], ids=["split", "packed"])
@pytest.mark.parametrize("swiotlb", [False, True], ids=["ram", "swiotlb"])
def test_a_reset_queue_fails_its_requests_and_works_again(packed, swiotlb):
    dev, t, drv, _storage = offering_ring_reset(Combo(packed=packed, indirect=True,
                                                      swiotlb=swiotlb))
    drv.init()
    assert drv.negotiated >> F_RING_RESET & 1
    drv.write(0, b"\x5a" * 512)
    resets = dev.counters.resets
    # a request the device has not served yet: the device never sees a kick
    t.notify = lambda q: None
    pending = drv.submit(0, [b"\0" * 16], [1])
    idle = drv.dma.in_use
    del t.notify
    drv.reset_queue(0)
    assert pending.done and isinstance(pending.error, DriverNotReady)
    assert drv.dma.in_use < idle                       # its memory came back
    assert t.read_status() & DRIVER_OK and drv.state == "ready"
    assert dev.counters.resets == resets and dev.events[-1].kind == "queue_reset"
    assert drv.read(0, 512) == b"\x5a" * 512             # the queue works again
    assert drv.outstanding() == 0


def test_queue_reset_needs_the_feature():
    dev, t, drv, _storage = blk_pair(Combo(packed=False, indirect=True, swiotlb=False))
    drv.init()
    with pytest.raises(DriverError, match="RING_RESET"):
        drv.reset_queue(0)
    with pytest.raises(TransportError):
        t.reset_queue(0)
    assert dev.events[-1].kind == "violation"
    assert drv.read(0, 512) == bytes(512)                # nothing was reset


def test_an_encrypted_queue_gets_a_fresh_key_and_counters_from_zero():
    dev, t, drv, _storage = offering_ring_reset(Combo(packed=False, indirect=True,
                                                      swiotlb=False))
    dlayer = enable_device(dev, log_nonces=True)
    layer = enable_driver(drv, "aes-256-gcm", log_nonces=True)
    drv.init()
    drv.write(0, b"\x33" * 512)
    drv.flush()
    before = layer.ciphers[0].key_id
    assert layer.ciphers[0].counter == 2
    drv.reset_queue(0)
    assert layer.ciphers[0].key_id != before and layer.ciphers[0].counter == 0
    assert dlayer.ciphers[0].key_id == layer.ciphers[0].key_id
    assert drv.read(0, 512) == b"\x33" * 512
    nonces = layer.nonce_log + dlayer.nonce_log
    assert len(set(nonces)) == len(nonces) == 6
    # after DRIVER_OK and outside a queue reset, key registers stay closed
    from device_ref.qenc.registers import WINDOW, program  # noqa: PLC0415
    for offset, data in program(0, 1, bytes(range(32))):
        t.write_config(WINDOW + offset, data)
    assert dev.status & 64                              # DEVICE_NEEDS_RESET
