"""Builders shared by the device tests: a device, its in-process transport
and a reference driver, with a chosen feature mask."""
from __future__ import annotations

from dataclasses import dataclass

from device_ref.devices.blk import BlkDevice, BlkOptions, MemoryStorage
from device_ref.devices.rng import RngDevice
from device_ref.driver.blk import BlkDriver
from device_ref.driver.core import ALL, DriverOptions
from device_ref.driver.rng import RngDriver
from device_ref.transport import BounceRegion
from device_ref.transport_inproc import InProcTransport

INDIRECT, EVENT_IDX, PACKED, IN_ORDER, SWIOTLB = 28, 29, 34, 35, 44
BOUNCE = BounceRegion(0x8000_1000, 1 << 20)


@dataclass(frozen=True)
class Combo:
    packed: bool = False
    indirect: bool = False
    event_idx: bool = False
    in_order: bool = False
    swiotlb: bool = False

    def mask(self) -> int:
        m = ALL
        for on, b in ((self.packed, PACKED), (self.indirect, INDIRECT), (self.event_idx, EVENT_IDX),
                      (self.in_order, IN_ORDER), (self.swiotlb, SWIOTLB)):
            if not on:
                m &= ~(1 << b)
        return m

    def __str__(self) -> str:
        parts = ["packed" if self.packed else "split"]
        parts += [n for n, on in (("indirect", self.indirect), ("event_idx", self.event_idx),
                                  ("in_order", self.in_order), ("swiotlb", self.swiotlb)) if on]
        return "+".join(parts)


def combos() -> list[Combo]:
    out = []
    for packed in (False, True):
        for swiotlb in (False, True):
            out.append(Combo(packed=packed, swiotlb=swiotlb))
            out.append(Combo(packed, True, True, True, swiotlb))
            out.append(Combo(packed, True, False, False, swiotlb))
            out.append(Combo(packed, False, True, False, swiotlb))
            out.append(Combo(packed, False, False, True, swiotlb))
    return out


def blk_pair(combo: Combo, sectors: int = 2048, device_cls=BlkDevice, opts=None,
             threaded: bool = False, **dev_kw):
    storage = MemoryStorage(sectors * 512)
    dev = device_cls(storage, opts or BlkOptions(), bounce=BOUNCE, **dev_kw)
    t = InProcTransport(dev, threaded=threaded)
    drv = BlkDriver(t, DriverOptions(features=combo.mask(), timeout=1.0))
    return dev, t, drv, storage


def rng_pair(combo: Combo, seed: int = 5, device_cls=RngDevice, **dev_kw):
    dev = device_cls(seed=seed, bounce=BOUNCE, **dev_kw)
    t = InProcTransport(dev)
    drv = RngDriver(t, DriverOptions(features=combo.mask(), timeout=1.0))
    return dev, t, drv
