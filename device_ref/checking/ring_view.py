"""Read the chains a driver made available, independently of the ring core.

The ring core tells the device what a chain *means* (segments); a checker
needs what the driver *wrote*: every descriptor with its index and flags,
indirect tables, where each lies, so that it can judge the driver and
compare the bytes again later. These functions parse one chain from guest
memory and list each rule the chain breaks as ``Problem`` records keyed by
the expectation the vectors use (``driver_chains readable_first``...).
"""
from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import Callable

from device_ref.ring.layout import (DESC_F_AVAIL, DESC_F_INDIRECT, DESC_F_NEXT, DESC_F_USED,
                                    DESC_F_WRITE)
from device_ref.transport import BounceRegion

SPLIT_DESC = struct.Struct("<QIHH")    # addr, len, flags, next
PACKED_DESC = struct.Struct("<QIHH")   # addr, len, id, flags
FOUR_GIB = 1 << 32

Reader = Callable[[int, int], bytes]


@dataclass(frozen=True)
class Context:
    """What the checker knows about a queue when it parses a chain."""
    size: int
    indirect: bool               # VIRTIO_F_INDIRECT_DESC negotiated
    in_order: bool               # VIRTIO_F_IN_ORDER negotiated
    region: BounceRegion | None  # set when VIRTIO_F_SWIOTLB is negotiated
    writable_only: bool = False  # the entropy queue
    data_limit: int | None = None  # blk seg_max: data descriptors per request


@dataclass(frozen=True)
class Desc:
    where: str        # "ring" or "table@0x..."
    index: int
    addr: int
    len: int
    flags: int


@dataclass
class Problem:
    property: str
    detail: str
    evidence: dict = field(default_factory=dict)


@dataclass
class Chain:
    head: int                    # split: table index; packed: ring position
    id: int | None = None        # packed: buffer id from the last descriptor
    descs: list[Desc] = field(default_factory=list)      # data descriptors, in order
    ring_descs: int = 0          # descriptors used in the table / ring itself
    indirect: bool = False
    snapshot: list[tuple[int, bytes]] = field(default_factory=list)
    tables: list[tuple[int, int]] = field(default_factory=list)   # indirect tables: addr, len
    problems: list[Problem] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)   # what could not be read, and so not judged
    next_pos: tuple[int, int] = (0, 0)   # packed: position and wrap after the chain

    def problem(self, prop: str, detail: str, **evidence) -> None:
        evidence.setdefault("head", self.head)
        self.problems.append(Problem(prop, detail, evidence))


def _outside(region: BounceRegion | None, addr: int, length: int) -> bool:
    return region is not None and not region.contains(addr, length)


def _read(chain: Chain, read: Reader, addr: int, length: int, what: str) -> bytes | None:
    try:
        data = read(addr, length)
    except Exception as exc:  # noqa: BLE001 - an unreadable address must not crash the device
        # No driver rule names "outside guest memory" (the device refuses it
        # on its own); say what went unjudged rather than guess a rule.
        chain.notes.append(f"{what} at {addr:#x}+{length} is not in the device's memory "
                           f"({exc}); not judged")
        return None
    chain.snapshot.append((addr, data))
    return data


def _table(chain: Chain, read: Reader, ctx: Context, addr: int, length: int,
           packed: bool) -> None:
    """An indirect table: its entries join the chain's data descriptors."""
    chain.indirect = True
    chain.tables.append((addr, length))
    where = f"table@{addr:#x}"
    if _outside(ctx.region, addr, length):
        chain.problem("addresses inside_region", f"indirect table {addr:#x}+{length} lies "
                      f"outside the bounce region", addr=addr, len=length, what="buffer")
        return
    if length == 0 or length % 16:
        chain.problem("driver_chains bounded", f"indirect table length {length} is not a "
                      f"positive multiple of 16", addr=addr, len=length)
        return
    n = length // 16
    if n > ctx.size:
        chain.problem("driver_chains within_queue_size", f"indirect table of {n} entries in a "
                      f"queue of {ctx.size}", table=addr, entries=n, queue_size=ctx.size)
    raw = _read(chain, read, addr, length, "indirect table")
    if raw is None:
        return
    if packed:
        order = range(n)
    else:
        order = []
        j, seen = 0, set()
        while True:
            if j in seen:
                chain.problem("driver_chains bounded", f"indirect table entries loop at {j}",
                              table=addr, entry=j)
                break
            seen.add(j)
            order.append(j)
            _a, _l, flags, nxt = SPLIT_DESC.unpack_from(raw, 16 * j)
            if not flags & DESC_F_NEXT:
                break
            if ctx.in_order and nxt != j + 1:
                chain.problem("driver_chains in_order_next", f"indirect entry {j} points at "
                              f"{nxt}, not {j + 1}", table=addr, entry=j, next=nxt)
            if nxt >= n:
                chain.problem("driver_chains bounded", f"indirect entry {j} points at {nxt}, "
                              f"past the table's {n} entries", table=addr, entry=j, next=nxt)
                break
            j = nxt
    for j in order:
        if packed:
            a, ln, _id, flags = PACKED_DESC.unpack_from(raw, 16 * j)
            if flags & ~DESC_F_WRITE:
                chain.problem("driver_chains indirect_only_write_flag", f"indirect entry {j} "
                              f"has flags {flags:#x}", table=addr, entry=j, flags=flags)
        else:
            a, ln, flags, _nxt = SPLIT_DESC.unpack_from(raw, 16 * j)
        if flags & DESC_F_INDIRECT:
            chain.problem("driver_chains no_nested_indirect", f"indirect entry {j} has "
                          f"INDIRECT", table=addr, entry=j, flags=flags)
            continue
        chain.descs.append(Desc(where, j, a, ln, flags))


def parse_split(read: Reader, desc_base: int, head: int, ctx: Context) -> Chain:
    chain = Chain(head)
    i = head
    seen: set[int] = set()
    while True:
        if i in seen or len(seen) >= ctx.size:
            chain.problem("driver_chains bounded", f"chain loops back to descriptor {i}",
                          desc=i)
            break
        seen.add(i)
        raw = _read(chain, read, desc_base + 16 * i, 16, "descriptor")
        if raw is None:
            break
        addr, ln, flags, nxt = SPLIT_DESC.unpack(raw)
        chain.ring_descs += 1
        if flags & DESC_F_INDIRECT:
            if not ctx.indirect:
                chain.problem("driver_chains indirect_only_if_negotiated", f"descriptor {i} has "
                              f"INDIRECT without VIRTIO_F_INDIRECT_DESC", desc=i, flags=flags)
            if flags & DESC_F_NEXT:
                chain.problem("driver_chains no_indirect_with_next", f"descriptor {i} has "
                              f"INDIRECT and NEXT", desc=i, flags=flags, next=nxt)
            _table(chain, read, ctx, addr, ln, packed=False)
            break
        chain.descs.append(Desc("ring", i, addr, ln, flags))
        if not flags & DESC_F_NEXT:
            break
        if ctx.in_order and nxt != (i + 1) % ctx.size:
            chain.problem("driver_chains in_order_next", f"descriptor {i} points at {nxt}, not "
                          f"{(i + 1) % ctx.size}", desc=i, next=nxt)
        if nxt >= ctx.size:
            chain.problem("driver_chains bounded", f"descriptor {i} points at {nxt}, past the "
                          f"table of {ctx.size}", desc=i, next=nxt)
            break
        i = nxt
    _judge(chain, ctx)
    return chain


def packed_available(flags: int, wrap: int) -> bool:
    return bool(flags & DESC_F_AVAIL) == bool(wrap) and bool(flags & DESC_F_USED) != bool(wrap)


def parse_packed(read: Reader, desc_base: int, pos: int, wrap: int, ctx: Context) -> Chain:
    chain = Chain(pos)
    p, w, k = pos, wrap, 0
    while True:
        raw = _read(chain, read, desc_base + 16 * p, 16, "descriptor")
        if raw is None:
            break
        addr, ln, ident, flags = PACKED_DESC.unpack(raw)
        if k > 0 and not packed_available(flags, w):
            chain.problem("driver_chains head_exposed_last", f"list head at {pos} is available "
                          f"but its descriptor {p} is not (flags {flags:#x}, wrap {w})",
                          desc=p, flags=flags, wrap=w)
            break
        k += 1
        chain.ring_descs = k
        chain.id = ident
        p += 1
        if p == ctx.size:
            p, w = 0, w ^ 1
        if flags & DESC_F_INDIRECT:
            if not ctx.indirect:
                chain.problem("driver_chains indirect_only_if_negotiated", f"descriptor "
                              f"{(p - 1) % ctx.size} has INDIRECT without VIRTIO_F_INDIRECT_DESC",
                              desc=(p - 1) % ctx.size, flags=flags)
            if flags & DESC_F_NEXT or k > 1:
                chain.problem("driver_chains no_indirect_with_next", f"descriptor with INDIRECT "
                              f"in a NEXT-linked list (position {k} of the list)", flags=flags)
            _table(chain, read, ctx, addr, ln, packed=True)
            break
        chain.descs.append(Desc("ring", (p - 1) % ctx.size, addr, ln, flags))
        if not flags & DESC_F_NEXT:
            break
        if k >= ctx.size:
            chain.problem("driver_chains within_queue_size", f"list of more than {ctx.size} "
                          f"descriptors", length=k)
            break
    chain.next_pos = (p, w)
    _judge(chain, ctx)
    return chain


def _judge(chain: Chain, ctx: Context) -> None:
    """Rules about the chain as a whole."""
    n = len(chain.descs) + (chain.ring_descs if not chain.indirect else chain.ring_descs - 1)
    if n > ctx.size:
        chain.problem("driver_chains within_queue_size", f"{n} descriptors in a queue of "
                      f"{ctx.size}", descriptors=n, queue_size=ctx.size)
    if ctx.data_limit is not None and len(chain.descs) - 2 > ctx.data_limit:
        chain.problem("driver_chains within_device_limit", f"{len(chain.descs) - 2} data "
                      f"descriptors, the device allows {ctx.data_limit}",
                      data_descriptors=len(chain.descs) - 2, limit=ctx.data_limit)
    seen_writable = None
    total = 0
    for d in chain.descs:
        total += d.len
        if d.flags & DESC_F_WRITE:
            seen_writable = seen_writable or d
        elif seen_writable is not None:
            chain.problem("driver_chains readable_first", f"device-readable {d.where} "
                          f"descriptor {d.index} after device-writable {seen_writable.where} "
                          f"descriptor {seen_writable.index}", desc=d.index,
                          after=seen_writable.index)
        if ctx.writable_only and not d.flags & DESC_F_WRITE:
            chain.problem("driver_chains writable_only", f"device-readable {d.where} descriptor "
                          f"{d.index} on the entropy queue", desc=d.index, len=d.len)
        if _outside(ctx.region, d.addr, d.len):
            chain.problem("addresses inside_region", f"buffer {d.addr:#x}+{d.len} "
                          f"({d.where} descriptor {d.index}) lies outside the bounce region "
                          f"{ctx.region.base:#x}+{ctx.region.size:#x}", addr=d.addr, len=d.len,
                          desc=d.index, what="buffer")
    if total > FOUR_GIB:
        chain.problem("driver_chains bounded", f"lengths add up to {total} bytes, over 2^32",
                      total=total)
