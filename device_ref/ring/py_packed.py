"""Pure-Python packed virtqueue, driver side and device side.

Positions are (index, wrap) pairs; both wrap counters start at 1.
"""
from __future__ import annotations

import struct
from collections import deque

from .batch import ChainBatch, UsedBatch, check_capacity
from .errors import RingError, RingErrorCode
from .layout import (DESC_F_AVAIL, DESC_F_INDIRECT, DESC_F_NEXT, DESC_F_USED, DESC_F_WRITE,
                     EVENT_FLAGS_DESC, EVENT_FLAGS_DISABLE, EVENT_FLAGS_ENABLE, QueueConfig)
from .memory import GuestMemory, store_u16
from .py_common import (PDESC, U16, ChainParser, DeviceSide, DriverSide, check_config, emit_used,
                        packed_event_hit, writable_total)

U16_AT_FLAGS = 14  # offset of flags inside a 16-byte descriptor
HEAD = struct.Struct("<QIH")  # addr, len, id: a descriptor without its flags


def avail_bits(wrap: int) -> int:
    """Flags that mark a descriptor available in a lap with this wrap counter."""
    return DESC_F_AVAIL if wrap else DESC_F_USED


def used_bits(wrap: int) -> int:
    return (DESC_F_AVAIL | DESC_F_USED) if wrap else 0


def is_avail(flags: int, wrap: int) -> bool:
    return bool(flags & DESC_F_AVAIL) == bool(wrap) and bool(flags & DESC_F_USED) != bool(wrap)


class _Pos:
    __slots__ = ("idx", "wrap")

    def __init__(self, idx: int = 0, wrap: int = 1) -> None:
        self.idx, self.wrap = idx, wrap

    def advance(self, n: int, size: int) -> None:
        self.idx += n
        while self.idx >= size:
            self.idx -= size
            self.wrap ^= 1


def _event_says_notify(area: memoryview, size: int, event_idx: bool, new: _Pos, moved: int) -> bool:
    off_wrap, flags = U16.unpack_from(area, 0)[0], U16.unpack_from(area, 2)[0]
    if flags == EVENT_FLAGS_DISABLE:
        return False
    if flags == EVENT_FLAGS_DESC and event_idx:
        return packed_event_hit(size, off_wrap & 0x7FFF, off_wrap >> 15, new.idx, new.wrap, moved)
    return True


class PackedDriver(DriverSide):
    def __init__(self, mem: GuestMemory, cfg: QueueConfig) -> None:
        self.mem, self.cfg, self.size = mem, cfg, cfg.size
        self.desc, self.drv_evt, self.dev_evt = check_config(mem, cfg)
        for area in (self.desc, self.drv_evt, self.dev_evt):
            area[:] = bytes(len(area))
        n = self.size
        self.free_ids = deque(range(n))
        self.free_desc = n
        self.token = [0] * n
        self.ndesc = [0] * n
        self.wlen = [0] * n
        self.inflight = [False] * n
        self.order: deque[int] = deque()
        self.next_avail = _Pos()
        self.last_used = _Pos()
        self.error = 0

    @property
    def num_free(self) -> int:
        return self.free_desc

    def add_batch(self, batch: ChainBatch) -> tuple[int, bool]:
        reqs = self._add_requests(batch)
        added = 0
        moved = 0
        for segs, ind, token in reqs:
            need = 1 if ind else len(segs)
            if need > self.free_desc or not self.free_ids:
                break
            cid = self.free_ids.popleft()
            head = _Pos(self.next_avail.idx, self.next_avail.wrap)
            if ind:
                table = self.mem.translate(ind, 16 * len(segs))
                for i, (a, ln, f) in enumerate(segs):
                    PDESC.pack_into(table, 16 * i, a, ln, 0, DESC_F_WRITE if f & 1 else 0)
                HEAD.pack_into(self.desc, 16 * head.idx, ind, 16 * len(segs), cid)
                head_flags = DESC_F_INDIRECT | avail_bits(head.wrap)
            else:
                pos = _Pos(head.idx, head.wrap)
                head_flags = 0
                for i, (a, ln, f) in enumerate(segs):
                    fl = (DESC_F_WRITE if f & 1 else 0) | (DESC_F_NEXT if i + 1 < len(segs) else 0)
                    fl |= avail_bits(pos.wrap)
                    # the head's flags go in last, so the device never sees half a chain
                    if i == 0:
                        HEAD.pack_into(self.desc, 16 * pos.idx, a, ln, cid)
                        head_flags = fl
                    else:
                        PDESC.pack_into(self.desc, 16 * pos.idx, a, ln, cid, fl)
                    pos.advance(1, self.size)
            store_u16(self.desc, 16 * head.idx + U16_AT_FLAGS, head_flags)
            self.next_avail.advance(need, self.size)
            self.free_desc -= need
            self.token[cid] = token
            self.ndesc[cid] = need
            self.wlen[cid] = writable_total(segs)
            self.inflight[cid] = True
            self.order.append(cid)
            added += 1
            moved += need
        if added == 0:
            if reqs:
                raise RingError(RingErrorCode.QUEUE_FULL)
            return 0, False
        return added, _event_says_notify(self.dev_evt, self.size, self.cfg.event_idx, self.next_avail, moved)

    def collect_batch(self, out: UsedBatch) -> int:
        check_capacity(out, "collect")
        self._check()
        count = 0
        try:
            while self.order and count < out.max_entries:
                pos = self.last_used
                flags = U16.unpack_from(self.desc, 16 * pos.idx + U16_AT_FLAGS)[0]
                a = 1 if flags & DESC_F_AVAIL else 0
                u = 1 if flags & DESC_F_USED else 0
                if a != u:
                    if a == pos.wrap:
                        break  # still the driver's available descriptor
                    raise RingError(RingErrorCode.USED_BAD_FLAGS, f"flags 0x{flags:x} at {pos.idx}")
                if a != pos.wrap:
                    raise RingError(RingErrorCode.USED_WRONG_WRAP, f"flags 0x{flags:x} at {pos.idx}")
                _addr, ln, cid, _f = PDESC.unpack_from(self.desc, 16 * pos.idx)
                if cid >= self.size or not self.inflight[cid]:
                    raise RingError(RingErrorCode.USED_ID_BAD, f"id {cid}")
                n = self.order.index(cid) + 1 if self.cfg.in_order else 1
                if not flags & DESC_F_WRITE:
                    ln = 0
                if ln > self.wlen[cid]:
                    raise RingError(RingErrorCode.USED_LEN_TOO_BIG, f"id {cid} len {ln} > {self.wlen[cid]}")
                if count + n > out.max_entries:
                    break
                skip = 0
                for _ in range(n - 1):
                    b = self.order.popleft()
                    emit_used(out, count, self.token[b], 0)
                    count += 1
                    skip += self._free(b)
                self._retire(cid)
                emit_used(out, count, self.token[cid], ln)
                count += 1
                skip += self._free(cid)
                self.last_used.advance(skip, self.size)
        except RingError as e:
            self._fail(e, out, count)
            raise
        out.count = count
        return count

    def _free(self, cid: int) -> int:
        self.inflight[cid] = False
        self.free_ids.append(cid)
        self.free_desc += self.ndesc[cid]
        return self.ndesc[cid]

    def _used_ready(self) -> bool:
        if not self.order:
            return False
        flags = U16.unpack_from(self.desc, 16 * self.last_used.idx + U16_AT_FLAGS)[0]
        return not is_avail(flags, self.last_used.wrap) and bool(flags & DESC_F_USED) == bool(self.last_used.wrap)

    def enable_interrupts(self) -> bool:
        if self.cfg.event_idx:
            store_u16(self.drv_evt, 0, self.last_used.idx | (self.last_used.wrap << 15))
            store_u16(self.drv_evt, 2, EVENT_FLAGS_DESC)
        else:
            store_u16(self.drv_evt, 2, EVENT_FLAGS_ENABLE)
        return self._used_ready()

    def disable_interrupts(self) -> None:
        store_u16(self.drv_evt, 2, EVENT_FLAGS_DISABLE)


class PackedDevice(DeviceSide):
    def __init__(self, mem: GuestMemory, cfg: QueueConfig, start: int | None = None) -> None:
        self.mem, self.cfg, self.size = mem, cfg, cfg.size
        self.desc, self.drv_evt, self.dev_evt = check_config(mem, cfg)
        if start is None:
            start = 1 << 15
        if (start & 0x7FFF) >= self.size:
            raise RingError(RingErrorCode.BAD_CONFIG, f"start index {start & 0x7FFF}")
        n = self.size
        self.next_avail = _Pos(start & 0x7FFF, (start >> 15) & 1)
        self.used_pos = _Pos(start & 0x7FFF, (start >> 15) & 1)
        self.inflight = [False] * n
        self.ndesc = [0] * n
        self.wlen = [0] * n
        self.order: deque[int] = deque()
        self.inflight_desc = 0
        self.parser = ChainParser(mem, n, cfg.indirect, packed=True)
        self.error = 0
        self._chain_len = 0  # descriptors in the chain _next_chain just parsed

    @property
    def state(self) -> int:
        return self.next_avail.idx | (self.next_avail.wrap << 15)

    def _parse(self) -> tuple[int, int]:
        """Parse the chain at next_avail; returns (buffer id, descriptors used)."""
        p = self.parser
        p.start()
        pos = _Pos(self.next_avail.idx, self.next_avail.wrap)
        k = 0
        while True:
            if k > 0:
                if k >= self.size:
                    raise RingError(RingErrorCode.CHAIN_TOO_LONG)
                flags = U16.unpack_from(self.desc, 16 * pos.idx + U16_AT_FLAGS)[0]
                if not is_avail(flags, pos.wrap):
                    raise RingError(RingErrorCode.PACKED_BAD_FLAGS, f"flags 0x{flags:x} at {pos.idx}")
            if self.inflight_desc + k + 1 > self.size:
                raise RingError(RingErrorCode.AVAIL_IDX_JUMP, "more descriptors available than the ring holds")
            addr, ln, cid, flags = PDESC.unpack_from(self.desc, 16 * pos.idx)
            k += 1
            if flags & DESC_F_INDIRECT:
                p.walk_indirect(p.indirect_table(addr, ln, flags))
                break
            p.data(addr, ln, flags)
            if not flags & DESC_F_NEXT:
                break
            pos.advance(1, self.size)
        if cid >= self.size:
            raise RingError(RingErrorCode.BUFFER_ID_RANGE, f"id {cid}")
        if self.inflight[cid]:
            raise RingError(RingErrorCode.ID_IN_USE, f"id {cid}")
        return cid, k

    def _next_chain(self) -> int | None:
        flags = U16.unpack_from(self.desc, 16 * self.next_avail.idx + U16_AT_FLAGS)[0]
        if not is_avail(flags, self.next_avail.wrap):
            return None
        cid, self._chain_len = self._parse()
        return cid

    def _took(self, cid: int) -> None:
        k = self._chain_len
        self.ndesc[cid] = k
        self.inflight_desc += k
        self.next_avail.advance(k, self.size)

    def push_batch(self, batch, fill: bool = False, coalesce: bool = False) -> bool:
        reqs = self._push_requests(batch, fill, coalesce)
        if not reqs:
            return False
        moved = 0
        if coalesce:
            cid, ln = reqs[-1]
            self._write_used(cid, ln)
        for cid, ln in reqs:
            if not coalesce:
                self._write_used(cid, ln)
                self.used_pos.advance(self.ndesc[cid], self.size)
            moved += self.ndesc[cid]
            self.inflight[cid] = False
            self.inflight_desc -= self.ndesc[cid]
            self._retire(cid)
        if coalesce:
            self.used_pos.advance(moved, self.size)
        return _event_says_notify(self.drv_evt, self.size, self.cfg.event_idx, self.used_pos, moved)

    def _write_used(self, cid: int, ln: int) -> None:
        off = 16 * self.used_pos.idx
        store_u16(self.desc, off + 12, cid)
        self.desc[off + 8:off + 12] = ln.to_bytes(4, "little")
        store_u16(self.desc, off + U16_AT_FLAGS,
                      used_bits(self.used_pos.wrap) | (DESC_F_WRITE if ln else 0))

    def enable_notifications(self) -> bool:
        if self.cfg.event_idx:
            store_u16(self.dev_evt, 0, self.next_avail.idx | (self.next_avail.wrap << 15))
            store_u16(self.dev_evt, 2, EVENT_FLAGS_DESC)
        else:
            store_u16(self.dev_evt, 2, EVENT_FLAGS_ENABLE)
        flags = U16.unpack_from(self.desc, 16 * self.next_avail.idx + U16_AT_FLAGS)[0]
        return is_avail(flags, self.next_avail.wrap)

    def disable_notifications(self) -> None:
        store_u16(self.dev_evt, 2, EVENT_FLAGS_DISABLE)
