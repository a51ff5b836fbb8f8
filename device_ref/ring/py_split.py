"""Pure-Python split virtqueue, driver side and device side."""
from __future__ import annotations

from collections import deque

from .batch import ChainBatch, UsedBatch, check_capacity
from .errors import RingError, RingErrorCode
from .layout import (AVAIL_F_NO_INTERRUPT, DESC_F_INDIRECT, DESC_F_NEXT, DESC_F_WRITE,
                     USED_F_NO_NOTIFY, QueueConfig)
from .memory import GuestMemory, store_u16
from .py_common import (DESC, U16, USED_ELEM, ChainParser, DeviceSide, DriverSide, check_config,
                        emit_used, need_event, writable_total)


class SplitDriver(DriverSide):
    def __init__(self, mem: GuestMemory, cfg: QueueConfig) -> None:
        self.mem, self.cfg, self.size = mem, cfg, cfg.size
        self.desc, self.avail, self.used = check_config(mem, cfg)
        for area in (self.desc, self.avail, self.used):
            area[:] = bytes(len(area))
        n = self.size
        self.free = deque(range(n))       # FIFO keeps IN_ORDER allocation sequential
        self.next = [0] * n                # private copy of chain links
        self.token = [0] * n
        self.ndesc = [0] * n
        self.wlen = [0] * n
        self.inflight = [False] * n
        self.order: deque[int] = deque()   # heads in the order they were made available
        self.avail_idx = 0
        self.last_used = 0
        self.error = 0

    @property
    def num_free(self) -> int:
        return len(self.free)

    def add_batch(self, batch: ChainBatch) -> tuple[int, bool]:
        reqs = self._add_requests(batch)
        old = self.avail_idx
        added = 0
        for segs, ind, token in reqs:
            need = 1 if ind else len(segs)
            if need > len(self.free):
                break
            ids = [self.free.popleft() for _ in range(need)]
            if ind:
                table = self.mem.translate(ind, 16 * len(segs))
                for i, (a, ln, f) in enumerate(segs):
                    fl = (DESC_F_WRITE if f & 1 else 0) | (DESC_F_NEXT if i + 1 < len(segs) else 0)
                    DESC.pack_into(table, 16 * i, a, ln, fl, i + 1 if i + 1 < len(segs) else 0)
                DESC.pack_into(self.desc, 16 * ids[0], ind, 16 * len(segs), DESC_F_INDIRECT, 0)
                self.next[ids[0]] = 0
            else:
                for i, (a, ln, f) in enumerate(segs):
                    last = i + 1 == len(segs)
                    nxt = 0 if last else ids[i + 1]
                    fl = (DESC_F_WRITE if f & 1 else 0) | (0 if last else DESC_F_NEXT)
                    DESC.pack_into(self.desc, 16 * ids[i], a, ln, fl, nxt)
                    self.next[ids[i]] = nxt
            head = ids[0]
            self.token[head] = token
            self.ndesc[head] = need
            self.wlen[head] = writable_total(segs)
            self.inflight[head] = True
            self.order.append(head)
            store_u16(self.avail, 4 + 2 * (self.avail_idx % self.size), head)
            self.avail_idx = (self.avail_idx + 1) & 0xFFFF
            added += 1
        if added == 0:
            if reqs:
                raise RingError(RingErrorCode.QUEUE_FULL)
            return 0, False
        store_u16(self.avail, 2, self.avail_idx)
        if self.cfg.event_idx:
            event = U16.unpack_from(self.used, 4 + 8 * self.size)[0]
            return added, need_event(event, self.avail_idx, old)
        return added, not (U16.unpack_from(self.used, 0)[0] & USED_F_NO_NOTIFY)

    def _free(self, head: int) -> None:
        d = head
        for _ in range(self.ndesc[head]):
            self.free.append(d)
            d = self.next[d]
        self.inflight[head] = False

    def collect_batch(self, out: UsedBatch) -> int:
        check_capacity(out, "collect")
        self._check()
        count = 0
        try:
            used_idx = U16.unpack_from(self.used, 2)[0]
            pending = (used_idx - self.last_used) & 0xFFFF
            if pending > len(self.order):
                raise RingError(RingErrorCode.USED_IDX_JUMP, f"{pending} used, {len(self.order)} outstanding")
            while self.last_used != used_idx and count < out.max_entries:
                cid, ln = USED_ELEM.unpack_from(self.used, 4 + 8 * (self.last_used % self.size))
                if cid >= self.size or not self.inflight[cid]:
                    raise RingError(RingErrorCode.USED_ID_BAD, f"id {cid}")
                if self.cfg.in_order:
                    n = self.order.index(cid) + 1
                    if n > ((used_idx - self.last_used) & 0xFFFF):
                        raise RingError(RingErrorCode.USED_IDX_JUMP, "in-order batch past used index")
                else:
                    n = 1
                if ln > self.wlen[cid]:
                    raise RingError(RingErrorCode.USED_LEN_TOO_BIG, f"id {cid} len {ln} > {self.wlen[cid]}")
                if count + n > out.max_entries:
                    break
                for _ in range(n - 1):
                    head = self.order.popleft()
                    emit_used(out, count, self.token[head], 0)
                    count += 1
                    self._free(head)
                self._retire(cid)
                emit_used(out, count, self.token[cid], ln)
                count += 1
                self._free(cid)
                self.last_used = (self.last_used + n) & 0xFFFF
        except RingError as e:
            self._fail(e, out, count)
            raise
        out.count = count
        return count

    def enable_interrupts(self) -> bool:
        if self.cfg.event_idx:
            store_u16(self.avail, 4 + 2 * self.size, self.last_used)
        else:
            store_u16(self.avail, 0, 0)
        return U16.unpack_from(self.used, 2)[0] != self.last_used

    def disable_interrupts(self) -> None:
        # with EVENT_IDX, flags must stay 0; used_event simply stays behind
        if not self.cfg.event_idx:
            store_u16(self.avail, 0, AVAIL_F_NO_INTERRUPT)


class SplitDevice(DeviceSide):
    def __init__(self, mem: GuestMemory, cfg: QueueConfig, start: int | None = None) -> None:
        self.mem, self.cfg, self.size = mem, cfg, cfg.size
        self.desc, self.avail, self.used = check_config(mem, cfg)
        n = self.size
        self.last_avail = (start or 0) & 0xFFFF
        self.used_idx = U16.unpack_from(self.used, 2)[0]
        self.inflight = [False] * n
        self.wlen = [0] * n
        self.order: deque[int] = deque()
        self.parser = ChainParser(mem, n, cfg.indirect, packed=False)
        self.error = 0
        self._avail_end = self.last_avail  # set by each pop batch

    @property
    def state(self) -> int:
        return self.last_avail

    def _parse(self, head: int) -> None:
        p = self.parser
        p.start()
        i = head
        visited = 0
        while True:
            visited += 1
            if visited > self.size:
                raise RingError(RingErrorCode.CHAIN_TOO_LONG, "loop in descriptor table")
            addr, ln, flags, nxt = DESC.unpack_from(self.desc, 16 * i)
            if flags & DESC_F_INDIRECT:
                p.walk_indirect(p.indirect_table(addr, ln, flags))
                return
            p.data(addr, ln, flags)
            if not flags & DESC_F_NEXT:
                return
            if nxt >= self.size:
                raise RingError(RingErrorCode.DESC_INDEX_RANGE, f"next {nxt}")
            i = nxt

    def _pop_begin(self) -> None:
        avail_idx = U16.unpack_from(self.avail, 2)[0]
        pending = (avail_idx - self.last_avail) & 0xFFFF
        if pending > self.size:
            raise RingError(RingErrorCode.AVAIL_IDX_JUMP, f"{pending} pending > {self.size}")
        self._avail_end = avail_idx  # the driver's index, read once a batch

    def _next_chain(self) -> int | None:
        if self.last_avail == self._avail_end:
            return None
        head = U16.unpack_from(self.avail, 4 + 2 * (self.last_avail % self.size))[0]
        if head >= self.size:
            raise RingError(RingErrorCode.DESC_INDEX_RANGE, f"head {head}")
        if self.inflight[head]:
            raise RingError(RingErrorCode.ID_IN_USE, f"head {head}")
        self._parse(head)
        return head

    def _took(self, cid: int) -> None:
        self.last_avail = (self.last_avail + 1) & 0xFFFF

    def push_batch(self, batch, fill: bool = False, coalesce: bool = False) -> bool:
        reqs = self._push_requests(batch, fill, coalesce)
        if not reqs:
            return False
        old = self.used_idx
        if coalesce:
            cid, ln = reqs[-1]
            USED_ELEM.pack_into(self.used, 4 + 8 * (self.used_idx % self.size), cid, ln)
        else:
            for k, (cid, ln) in enumerate(reqs):
                USED_ELEM.pack_into(self.used, 4 + 8 * ((self.used_idx + k) % self.size), cid, ln)
        for cid, _ln in reqs:
            self.inflight[cid] = False
            self._retire(cid)
        self.used_idx = (self.used_idx + len(reqs)) & 0xFFFF
        store_u16(self.used, 2, self.used_idx)
        if self.cfg.event_idx:
            event = U16.unpack_from(self.avail, 4 + 2 * self.size)[0]
            return need_event(event, self.used_idx, old)
        return not (U16.unpack_from(self.avail, 0)[0] & AVAIL_F_NO_INTERRUPT)

    def enable_notifications(self) -> bool:
        if self.cfg.event_idx:
            store_u16(self.used, 4 + 8 * self.size, self.last_avail)
        else:
            store_u16(self.used, 0, 0)
        return U16.unpack_from(self.avail, 2)[0] != self.last_avail

    def disable_notifications(self) -> None:
        if not self.cfg.event_idx:
            store_u16(self.used, 0, USED_F_NO_NOTIFY)
