"""Raw ring writers for hostile-input tests: they bypass the driver entirely."""
from __future__ import annotations

import struct

from .rig import BASE, Rig

NEXT, WRITE, INDIRECT, AVAIL, USED = 1, 2, 4, 0x80, 0x8000
BUF = 0x108000           # a buffer area inside the test region


def split_desc(r: Rig, i: int, addr: int, ln: int, flags: int = 0, nxt: int = 0) -> None:
    struct.pack_into("<QIHH", r.buf, r.cfg.desc - BASE + 16 * i, addr, ln, flags, nxt)


def split_avail(r: Rig, heads: list[int], idx: int | None = None) -> None:
    for k, h in enumerate(heads):
        struct.pack_into("<H", r.buf, r.cfg.driver - BASE + 4 + 2 * (k % r.cfg.size), h)
    struct.pack_into("<H", r.buf, r.cfg.driver - BASE + 2, len(heads) if idx is None else idx)


def table_desc(r: Rig, table: int, i: int, addr: int, ln: int, flags: int = 0, nxt: int = 0) -> None:
    struct.pack_into("<QIHH", r.buf, table - BASE + 16 * i, addr, ln, flags, nxt)


def packed_desc(r: Rig, i: int, addr: int, ln: int, id: int, flags: int) -> None:
    struct.pack_into("<QIHH", r.buf, r.cfg.desc - BASE + 16 * i, addr, ln, id, flags)


def packed_table_desc(r: Rig, table: int, i: int, addr: int, ln: int, flags: int = 0) -> None:
    struct.pack_into("<QIHH", r.buf, table - BASE + 16 * i, addr, ln, 0, flags)


def split_used(r: Rig, slot: int, id: int, ln: int) -> None:
    struct.pack_into("<II", r.buf, r.cfg.device - BASE + 4 + 8 * slot, id, ln)


def split_used_idx(r: Rig, idx: int) -> None:
    struct.pack_into("<H", r.buf, r.cfg.device - BASE + 2, idx)
