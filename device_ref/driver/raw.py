"""Raw ring access for conformance tests: every field is the caller's.

The safe driver (``core.py``) never writes a malformed ring. A conformance
suite must, to see what a device does with one, and must read back exactly
what a device wrote. ``RawSplit`` and ``RawPacked`` write descriptors,
available entries and event-suppression fields with arbitrary values
(addresses outside memory, loops, bad flags, wrong wrap bits) into rings at
known guest addresses, and read the device's used entries without judging
them. They go through the same ring-core memory map the driver uses.

Use them on a queue the safe layer has not used yet (``VirtioDriver.take_raw``):
both sides start at index 0 (packed: wrap counter 1).
"""
from __future__ import annotations

import struct
from dataclasses import dataclass

from device_ref.ring.layout import DESC_F_AVAIL, DESC_F_USED, QueueConfig

_DESC = struct.Struct("<QIHH")  # addr, len, flags, next (split) / id, flags (packed: see below)
_PDESC = struct.Struct("<QIHH")  # addr, len, id, flags
_U16 = struct.Struct("<H")
_USED = struct.Struct("<II")


@dataclass(frozen=True)
class RawDesc:
    addr: int
    len: int
    flags: int = 0
    next: int = 0   # split: next index; packed: buffer id


class RawSplit:
    def __init__(self, memory, cfg: QueueConfig) -> None:
        self.mem = memory
        self.cfg = cfg
        self.size = cfg.size
        self.avail_idx = _U16.unpack(memory.read(cfg.driver + 2, 2))[0]
        self.last_used = _U16.unpack(memory.read(cfg.device + 2, 2))[0]

    def write_desc(self, index: int, d: RawDesc) -> None:
        self.mem.write(self.cfg.desc + 16 * index,
                       _DESC.pack(d.addr & (2**64 - 1), d.len & 0xFFFFFFFF, d.flags, d.next))

    def write_table(self, addr: int, descs: list[RawDesc]) -> None:
        """An indirect table at ``addr``."""
        self.mem.write(addr, b"".join(_DESC.pack(d.addr & (2**64 - 1), d.len & 0xFFFFFFFF,
                                                 d.flags, d.next) for d in descs))

    def publish(self, heads: list[int], idx: int | None = None) -> None:
        """Put ``heads`` in the available ring, then set avail idx (default: advanced by len(heads))."""
        for k, h in enumerate(heads):
            slot = (self.avail_idx + k) % self.size
            self.mem.write(self.cfg.driver + 4 + 2 * slot, _U16.pack(h & 0xFFFF))
        self.avail_idx = ((self.avail_idx + len(heads)) if idx is None else idx) & 0xFFFF
        self.mem.write(self.cfg.driver + 2, _U16.pack(self.avail_idx))

    def set_avail_flags(self, flags: int) -> None:
        self.mem.write(self.cfg.driver, _U16.pack(flags))

    def set_used_event(self, value: int) -> None:
        self.mem.write(self.cfg.driver + 4 + 2 * self.size, _U16.pack(value & 0xFFFF))

    def used_idx(self) -> int:
        return _U16.unpack(self.mem.read(self.cfg.device + 2, 2))[0]

    def used_flags(self) -> int:
        return _U16.unpack(self.mem.read(self.cfg.device, 2))[0]

    def avail_event(self) -> int:
        return _U16.unpack(self.mem.read(self.cfg.device + 4 + 8 * self.size, 2))[0]

    def take_used(self) -> list[tuple[int, int]]:
        """Every (id, len) the device published since the last call, unjudged."""
        out = []
        idx = self.used_idx()
        while self.last_used != idx:
            slot = self.last_used % self.size
            out.append(_USED.unpack(self.mem.read(self.cfg.device + 4 + 8 * slot, 8)))
            self.last_used = (self.last_used + 1) & 0xFFFF
        return out


class RawPacked:
    def __init__(self, memory, cfg: QueueConfig) -> None:
        self.mem = memory
        self.cfg = cfg
        self.size = cfg.size
        self.avail_pos, self.avail_wrap = 0, 1
        self.used_pos, self.used_wrap = 0, 1

    def avail_flags(self, flags: int, wrap: int | None = None) -> int:
        """``flags`` plus the AVAIL/USED bits that mark a descriptor available in lap ``wrap``."""
        w = self.avail_wrap if wrap is None else wrap
        return (flags & ~(DESC_F_AVAIL | DESC_F_USED)) | (DESC_F_AVAIL if w else DESC_F_USED)

    def write_desc(self, pos: int, d: RawDesc) -> None:
        """Write the descriptor at ring position ``pos`` with flags exactly as given."""
        base = self.cfg.desc + 16 * pos
        self.mem.write(base, struct.pack("<QI", d.addr & (2**64 - 1), d.len & 0xFFFFFFFF))
        self.mem.write(base + 12, _U16.pack(d.next & 0xFFFF))
        self.mem.write(base + 14, _U16.pack(d.flags & 0xFFFF))  # flags last: publishes

    def write_table(self, addr: int, descs: list[RawDesc]) -> None:
        self.mem.write(addr, b"".join(_PDESC.pack(d.addr & (2**64 - 1), d.len & 0xFFFFFFFF,
                                                  d.next, d.flags) for d in descs))

    def add(self, descs: list[RawDesc], mark_available: bool = True) -> None:
        """Write a chain at the current avail position; flags get this lap's
        AVAIL/USED bits when ``mark_available`` (else exactly as given)."""
        for d in descs:
            flags = self.avail_flags(d.flags) if mark_available else d.flags
            self.write_desc(self.avail_pos, RawDesc(d.addr, d.len, flags, d.next))
            self.avail_pos += 1
            if self.avail_pos == self.size:
                self.avail_pos, self.avail_wrap = 0, self.avail_wrap ^ 1

    def read_desc(self, pos: int) -> RawDesc:
        addr, ln, ident, flags = _PDESC.unpack(self.mem.read(self.cfg.desc + 16 * pos, 16))
        return RawDesc(addr, ln, flags, ident)

    def set_driver_event(self, off_wrap: int, flags: int) -> None:
        self.mem.write(self.cfg.driver, _U16.pack(off_wrap) + _U16.pack(flags))

    def device_event(self) -> tuple[int, int]:
        off_wrap, flags = struct.unpack("<HH", self.mem.read(self.cfg.device, 4))
        return off_wrap, flags

    def take_used(self, ndesc: dict[int, int] | None = None) -> list[tuple[int, int, int]]:
        """(id, len, flags) of each used descriptor in order; ``ndesc`` maps
        buffer id to its chain length so the scan skips whole chains."""
        out = []
        while True:
            d = self.read_desc(self.used_pos)
            a, u = bool(d.flags & DESC_F_AVAIL), bool(d.flags & DESC_F_USED)
            if not (a == u == bool(self.used_wrap)):
                return out
            out.append((d.next, d.len, d.flags))
            step = (ndesc or {}).get(d.next, 1)
            self.used_pos += step
            if self.used_pos >= self.size:
                self.used_pos -= self.size
                self.used_wrap ^= 1
            if len(out) >= self.size:
                return out
