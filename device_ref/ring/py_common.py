"""Pieces both pure-Python ring layouts share."""
from __future__ import annotations

import struct
from collections import deque

from .batch import ADD, POPPED, SEG, SEG_WRITABLE, USED, ChainBatch, PopBatch, check_capacity
from .errors import RingError, RingErrorCode
from .layout import DESC_F_INDIRECT, DESC_F_NEXT, DESC_F_WRITE, QueueConfig
from .memory import GuestMemory

U16 = struct.Struct("<H")
U32 = struct.Struct("<I")
DESC = struct.Struct("<QIHH")   # split descriptor: addr, len, flags, next
PDESC = struct.Struct("<QIHH")  # packed descriptor: addr, len, id, flags
USED_ELEM = struct.Struct("<II")
U32_MAX = 0xFFFFFFFF


def need_event(event: int, new: int, old: int) -> bool:
    """Split-ring EVENT_IDX test: did [old, new) cross `event`? (16-bit arithmetic)"""
    return ((new - event - 1) & 0xFFFF) < ((new - old) & 0xFFFF)


def packed_event_hit(size: int, ev_idx: int, ev_wrap: int, new_idx: int, new_wrap: int, moved: int) -> bool:
    """Packed descriptor-specific event: was position (ev_idx, ev_wrap) among the
    `moved` positions just before (new_idx, new_wrap)?"""
    back = new_idx - ev_idx + (size if ev_wrap != new_wrap else 0)
    if back <= 0:
        back += 2 * size
    return 1 <= back <= moved


def read_chain_requests(batch: ChainBatch, size: int, indirect_ok: bool, mem: GuestMemory):
    """Decode and sanity-check a ChainBatch before the driver writes anything."""
    chains = []
    s = 0
    for k in range(batch.count):
        nseg, _r, ind, token = ADD.unpack_from(batch.chains, ADD.size * k)
        if nseg == 0 or nseg > size or s + nseg > batch.nsegs:
            raise RingError(RingErrorCode.BAD_REQUEST, f"chain {k} has {nseg} segments")
        segs = [SEG.unpack_from(batch.segs, SEG.size * j) for j in range(s, s + nseg)]
        s += nseg
        if ind:
            if not indirect_ok:
                raise RingError(RingErrorCode.BAD_REQUEST, "indirect table without VIRTIO_F_INDIRECT_DESC")
            mem.find(ind, 16 * nseg)
        chains.append((segs, ind, token))
    return chains


def writable_total(segs) -> int:
    return sum(ln for _a, ln, f in segs if f & SEG_WRITABLE)


class ChainParser:
    """Walks one descriptor chain for the device side (both layouts)."""

    def __init__(self, mem: GuestMemory, size: int, indirect: bool, packed: bool) -> None:
        self.mem = mem
        self.size = size
        self.indirect = indirect
        self.packed = packed

    def start(self) -> None:
        self.segs: list[tuple[int, int, int]] = []
        self.seen_write = False
        self.wlen = 0

    def data(self, addr: int, ln: int, flags: int) -> None:
        self.mem.find(addr, ln)
        if flags & DESC_F_WRITE:
            self.seen_write = True
            self.wlen += ln
            if self.wlen > U32_MAX:
                raise RingError(RingErrorCode.CHAIN_LEN_OVERFLOW)
        elif self.seen_write:
            raise RingError(RingErrorCode.READ_AFTER_WRITE)
        if len(self.segs) >= self.size:
            raise RingError(RingErrorCode.CHAIN_TOO_LONG, "more segments than the queue size")
        self.segs.append((addr, ln, SEG_WRITABLE if flags & DESC_F_WRITE else 0))

    def indirect_table(self, addr: int, ln: int, flags: int) -> memoryview:
        """Checks for a descriptor with INDIRECT set; returns the table bytes."""
        if not self.indirect:
            raise RingError(RingErrorCode.INDIRECT_NOT_NEGOTIATED)
        if flags & DESC_F_NEXT:
            raise RingError(RingErrorCode.INDIRECT_WITH_NEXT)
        if ln == 0 or ln % 16:
            raise RingError(RingErrorCode.INDIRECT_BAD_LEN, f"len {ln}")
        if ln // 16 > self.size:
            raise RingError(RingErrorCode.CHAIN_TOO_LONG, "indirect table larger than the queue size")
        return self.mem.translate(addr, ln)

    def walk_indirect(self, table: memoryview) -> None:
        n = len(table) // 16
        if self.packed:
            # packed tables are sequential; only WRITE is meaningful
            for i in range(n):
                addr, ln, _id, flags = PDESC.unpack_from(table, 16 * i)
                if flags & DESC_F_INDIRECT:
                    raise RingError(RingErrorCode.INDIRECT_NESTED)
                self.data(addr, ln, flags)
            return
        i = 0
        visited = 0
        while True:
            visited += 1
            if visited > n:
                raise RingError(RingErrorCode.CHAIN_TOO_LONG, "loop in indirect table")
            addr, ln, flags, nxt = DESC.unpack_from(table, 16 * i)
            if flags & DESC_F_INDIRECT:
                raise RingError(RingErrorCode.INDIRECT_NESTED)
            self.data(addr, ln, flags)
            if not flags & DESC_F_NEXT:
                return
            if nxt >= n:
                raise RingError(RingErrorCode.DESC_INDEX_RANGE, f"indirect next {nxt} >= {n}")
            i = nxt


def emit_popped(batch, count: int, seg_base: int, cid: int, segs, wlen: int) -> None:
    for j, (a, ln, f) in enumerate(segs):
        SEG.pack_into(batch.segs, SEG.size * (seg_base + j), a, ln, f)
    POPPED.pack_into(batch.chains, POPPED.size * count, cid, len(segs), wlen, 0)


def read_push_requests(batch, fill: bool, size: int, inflight: list[bool], in_order: bool,
                       order, wlen: list[int]) -> list[tuple[int, int]]:
    """Decode and validate a push batch; a caller mistake must not corrupt the ring."""
    out = []
    seen = set()
    for k in range(batch.count):
        cid, _n, _wlen, written = POPPED.unpack_from(batch.chains, POPPED.size * k)
        if cid >= size or not inflight[cid] or cid in seen:
            raise RingError(RingErrorCode.PUSH_UNKNOWN_ID, f"id {cid}")
        if in_order and order[k] != cid:
            raise RingError(RingErrorCode.PUSH_OUT_OF_ORDER, f"id {cid}")
        ln = wlen[cid] if fill else written
        if ln > wlen[cid]:
            raise RingError(RingErrorCode.BAD_REQUEST, f"written {ln} > writable {wlen[cid]}")
        seen.add(cid)
        out.append((cid, ln))
    return out


def emit_used(out, k: int, token: int, ln: int) -> None:
    USED.pack_into(out.entries, USED.size * k, token, ln, 0)


def check_config(mem: GuestMemory, cfg: QueueConfig):
    areas = cfg.validate()
    return (mem.translate(cfg.desc, areas.desc.size),
            mem.translate(cfg.driver, areas.driver.size),
            mem.translate(cfg.device, areas.device.size))


class RingSide:
    """What the driver and device sides of both layouts share: a queue that
    failed once stays failed, and buffers leave `order` in their order."""

    cfg: QueueConfig
    order: deque[int]
    error: int

    def _check(self) -> None:
        if self.error:
            raise RingError(self.error, "queue already failed")

    def _fail(self, e: RingError, batch, count: int) -> None:
        """Record a ring error; the batch and the error both say how many entries were done."""
        self.error = e.code
        batch.count = count
        e.count = count

    def _retire(self, cid: int) -> None:
        if self.cfg.in_order:
            self.order.popleft()
        else:
            self.order.remove(cid)


class DriverSide(RingSide):
    """Driver-side pieces both layouts share."""

    mem: GuestMemory
    size: int

    @property
    def outstanding(self) -> int:
        return len(self.order)

    def _add_requests(self, batch: ChainBatch):
        """Checks every add batch gets; the decoded chains to make available."""
        check_capacity(batch, "add")
        self._check()
        return read_chain_requests(batch, self.size, self.cfg.indirect, self.mem)


class DeviceSide(RingSide):
    """Device-side batch handling both layouts share; a layout supplies the
    hooks `_pop_begin`, `_next_chain` and `_took`."""

    mem: GuestMemory
    size: int
    parser: ChainParser
    inflight: list[bool]
    wlen: list[int]

    @property
    def in_flight(self) -> int:
        return len(self.order)

    def _pop_begin(self) -> None:
        """Called once a pop batch, inside the error capture."""

    def _next_chain(self) -> int | None:
        """Parse the next available chain into self.parser; its id, or None if none is available."""
        raise NotImplementedError

    def _took(self, cid: int) -> None:
        """Advance past the chain `_next_chain` just parsed."""
        raise NotImplementedError

    def pop_batch(self, batch: PopBatch) -> int:
        check_capacity(batch, "pop")
        self._check()
        if batch.max_segs < self.size:
            raise RingError(RingErrorCode.BAD_REQUEST, "pop batch must hold queue-size segments")
        count = 0
        seg_base = 0
        try:
            self._pop_begin()
            while count < batch.max_chains:
                cid = self._next_chain()
                if cid is None:
                    break
                segs = self.parser.segs
                if seg_base + len(segs) > batch.max_segs:
                    break
                emit_popped(batch, count, seg_base, cid, segs, self.parser.wlen)
                seg_base += len(segs)
                count += 1
                self.inflight[cid] = True
                self.wlen[cid] = self.parser.wlen
                self.order.append(cid)
                self._took(cid)
        except RingError as e:
            self._fail(e, batch, count)
            raise
        batch.count = count
        return count

    def _push_requests(self, batch, fill: bool, coalesce: bool) -> list[tuple[int, int]]:
        """Checks every push batch gets; the (id, length) pairs to write, [] for an empty batch."""
        check_capacity(batch, "push")
        self._check()
        if batch.count == 0:
            return []
        if coalesce and not self.cfg.in_order:
            raise RingError(RingErrorCode.BAD_REQUEST, "coalesced used entries need IN_ORDER")
        return read_push_requests(batch, fill, self.size, self.inflight, self.cfg.in_order,
                                  self.order, self.wlen)
