"""Small rigs for the driver-check tests: a checking device on the
in-process transport with the reference driver, or with the raw ring layer
so a test can commit one violation on purpose."""
from __future__ import annotations

from dataclasses import dataclass

from device_ref.checking.device import CheckingBlkDevice, CheckingRngDevice
from device_ref.devices.blk import BlkOptions, MemoryStorage
from device_ref.driver.blk import BlkDriver, header
from device_ref.driver.core import ALL, DriverOptions
from device_ref.ring.hostile import Desc
from device_ref.driver.rng import RngDriver
from device_ref.transport import BounceRegion
from device_ref.transport_inproc import InProcTransport

F_INDIRECT_DESC, F_EVENT_IDX, F_VERSION_1, F_RING_PACKED, F_IN_ORDER, F_SWIOTLB = \
    28, 29, 32, 34, 35, 44
NEXT, WRITE, INDIRECT = 1, 2, 4
T_IN, T_OUT, T_FLUSH, T_GET_ID, T_DISCARD = 0, 1, 4, 8, 11
BOUNCE = BounceRegion(0x8000_0000, 1 << 20)
DISK_SECTORS = 2048
QUEUE = 64


@dataclass
class Rig:
    device: object
    transport: InProcTransport
    driver: object

    @property
    def log(self):
        return self.device.check_log

    def props(self) -> set[str]:
        return {v.property for v in self.log.violations}

    def raw(self):
        return self.driver.take_raw(0)

    def buf(self, n: int, data: bytes | None = None) -> int:
        """Guest RAM for a raw request (outside any bounce region)."""
        b = self.driver.alloc_guest(max(n, 1))
        if data is not None:
            self.transport.memory.write(b.addr, data)
        return b.addr

    def kick(self) -> None:
        self.transport.notify(0)

    def close(self) -> None:
        self.transport.close()


def make(kind: str = "blk", packed: bool = False, features: int = ALL,
         bounce: BounceRegion | None = None, device_cls=None, init: bool = True,
         layer=None, blk_opts: BlkOptions = BlkOptions()) -> Rig:
    offer = ~0 if packed else ~(1 << F_RING_PACKED)
    if kind == "blk":
        cls = device_cls or CheckingBlkDevice
        dev = cls(MemoryStorage(DISK_SECTORS * 512), blk_opts, bounce=bounce, offer=offer)
        drv_cls = BlkDriver
    else:
        cls = device_cls or CheckingRngDevice
        dev = cls(seed=7, bounce=bounce, offer=offer)
        drv_cls = RngDriver
    t = InProcTransport(dev, ram_size=4 << 20)
    drv = drv_cls(t, DriverOptions(features=features, queue_size=QUEUE))
    drv.buffer_layer = layer
    if init:
        drv.init()
    return Rig(dev, t, drv)


def blk_read_parts(rig: Rig, sector: int = 0, data_len: int = 512) -> tuple[int, int, int]:
    """Addresses of a read request's header, data and status buffers."""
    return (rig.buf(16, header(T_IN, sector)), rig.buf(data_len), rig.buf(1))


def split_read_chain(rig: Rig, raw, first: int = 0) -> list[Desc]:
    """A well-formed three-descriptor read at table indices first..first+2."""
    h, d, s = blk_read_parts(rig)
    descs = [Desc(h, 16, NEXT, first + 1), Desc(d, 512, WRITE | NEXT, first + 2),
             Desc(s, 1, WRITE, 0)]
    for k, desc in enumerate(descs):
        raw.write_desc(first + k, desc)
    return descs
