"""Builders for the queue-encryption tests: a reference device with the
device-side layer, an in-process transport that lets a test play the
untrusted VMM between the driver's kick and the device, and a reference
driver with the driver-side layer."""
from __future__ import annotations

import struct
from dataclasses import replace

from device_ref.devices.blk import BlkDevice, BlkOptions, MemoryStorage
from device_ref.devices.rng import RngDevice
from device_ref.driver.blk import BlkDriver
from device_ref.driver.core import ALL, DriverOptions
from device_ref.driver.rng import RngDriver
from device_ref.qenc import DriverQenc, enable_device
from device_ref.transport import BounceRegion
from device_ref.transport_inproc import InProcTransport

PACKED, SWIOTLB, INDIRECT, RING_RESET = 34, 44, 28, 40
BOUNCE = BounceRegion(0x8000_1000, 1 << 20)


class VmmTransport(InProcTransport):
    """The in-process transport with a hook that runs before each kick
    reaches the device: what an untrusted VMM between the two could do."""

    before_kick = None

    def notify(self, queue: int) -> None:
        if self.before_kick is not None:
            self.before_kick(self, queue)
        super().notify(queue)


def mask(packed: bool = False, swiotlb: bool = False, indirect: bool = True) -> int:
    m = ALL
    if not packed:
        m &= ~(1 << PACKED)
    if not swiotlb:
        m &= ~(1 << SWIOTLB)
    if not indirect:
        m &= ~(1 << INDIRECT)
    return m


def blk(algorithm="aes-256-gcm", packed=False, swiotlb=False, indirect=True, keygen=None,
        log=False, sectors=2048, ring_reset=False):
    storage = MemoryStorage(sectors * 512)
    dev = BlkDevice(storage, BlkOptions(), bounce=BOUNCE)
    if ring_reset:   # offer VIRTIO_F_RING_RESET: queues can be reset one by one
        dev.rules = replace(dev.rules, offered=dev.rules.offered | 1 << RING_RESET)
    dlayer = enable_device(dev, log_nonces=log)
    t = VmmTransport(dev)
    drv = BlkDriver(t, DriverOptions(features=mask(packed, swiotlb, indirect), timeout=1.0))
    kw = {"keygen": keygen} if keygen is not None else {}
    drv.buffer_layer = DriverQenc(algorithm, log_nonces=log, **kw)
    return dev, dlayer, t, drv, storage


def rng(algorithm="aes-256-gcm", packed=False, seed=5):
    dev = RngDevice(seed=seed)
    dlayer = enable_device(dev)
    t = VmmTransport(dev)
    drv = RngDriver(t, DriverOptions(features=mask(packed)))
    drv.buffer_layer = DriverQenc(algorithm)
    return dev, dlayer, t, drv


def split_head(t, drv, queue: int = 0) -> tuple[int, int, int]:
    """(addr, len, flags) of the head descriptor of the chain made available
    last on a split queue (the readable part, when the chain has one)."""
    cfg = drv.queue_config(queue)
    idx = struct.unpack("<H", t.memory.read(cfg.driver + 2, 2))[0]
    head = struct.unpack("<H", t.memory.read(cfg.driver + 4 + 2 * ((idx - 1) % cfg.size), 2))[0]
    addr, length, flags, _next = struct.unpack("<QIHH", t.memory.read(cfg.desc + 16 * head, 16))
    return addr, length, flags
