"""A guest memory with rings, shared by the ring tests."""
from __future__ import annotations

import struct
from dataclasses import dataclass

from device_ref.ring import DeviceQueue, DriverQueue, GuestMemory, QueueConfig, place_rings

BASE = 0x100000
MEM_SIZE = 0x10000


@dataclass
class Rig:
    mem: GuestMemory
    buf: bytearray
    cfg: QueueConfig
    drv: DriverQueue
    dev: DeviceQueue

    def u16(self, gpa: int) -> int:
        return struct.unpack_from("<H", self.buf, gpa - BASE)[0]

    def u32(self, gpa: int) -> int:
        return struct.unpack_from("<I", self.buf, gpa - BASE)[0]

    def u64(self, gpa: int) -> int:
        return struct.unpack_from("<Q", self.buf, gpa - BASE)[0]

    def put(self, gpa: int, fmt: str, *vals: int) -> None:
        struct.pack_into(fmt, self.buf, gpa - BASE, *vals)

    def split_desc(self, i: int) -> tuple[int, int, int, int]:
        """(addr, len, flags, next) of split descriptor i."""
        return struct.unpack_from("<QIHH", self.buf, self.cfg.desc - BASE + 16 * i)

    def packed_desc(self, i: int) -> tuple[int, int, int, int]:
        """(addr, len, id, flags) of packed descriptor i."""
        return struct.unpack_from("<QIHH", self.buf, self.cfg.desc - BASE + 16 * i)


def make_rig(backend: str, layout: str, size: int = 4, *, event_idx: bool = False,
             indirect: bool = False, in_order: bool = False, device: bool = True) -> Rig:
    mem = GuestMemory()
    buf = bytearray(MEM_SIZE)
    mem.add_region(BASE, buf)
    cfg = place_rings(layout, size, BASE, event_idx=event_idx, indirect=indirect, in_order=in_order)
    drv = DriverQueue(mem, cfg, backend=backend)
    dev = DeviceQueue(mem, cfg, backend=backend) if device else None
    return Rig(mem, buf, cfg, drv, dev)
