"""The C backend: thin wrappers that hand whole batch buffers to ring.c."""
from __future__ import annotations

from typing import Any

from .batch import ChainBatch, PopBatch, UsedBatch
from .errors import RingError, RingErrorCode
from .layout import QueueConfig
from .memory import GuestMemory


def _lib():
    from . import _ring_c
    return _ring_c.ffi, _ring_c.lib


class CMemMap:
    """The C mirror of a GuestMemory (struct ring_mem), updated as regions are added."""

    def __init__(self, ffi: Any, mem: GuestMemory) -> None:
        self.ffi = ffi
        self.cmem = ffi.new("struct ring_mem *")
        self._keep: list[Any] = []
        self.refresh(mem)

    def refresh(self, mem: GuestMemory) -> None:
        regions = mem.regions
        arr = self.ffi.new("struct ring_region[]", max(1, len(regions)))
        for i, r in enumerate(regions):
            # map the owner, not our memoryview: a memoryview with a live export
            # must never be torn down by the cycle collector
            host = self.ffi.from_buffer("uint8_t[]", r.owner, require_writable=True)
            arr[i].gpa = r.gpa
            arr[i].size = r.size
            arr[i].host = host
            self._keep.append(host)
        self._keep.append(arr)
        self.cmem.regions = arr
        self.cmem.nregions = len(regions)


def _cmap(mem: GuestMemory) -> CMemMap:
    ffi, _ = _lib()
    if mem._c_map is None:
        mem._c_map = CMemMap(ffi, mem)
    return mem._c_map


def _ptrs(batch: Any, ffi: Any, spec: tuple[tuple[str, str], ...]) -> tuple:
    # cached per batch object and view: its bytearrays never change size
    cache = batch._c
    if cache is None:
        cache = batch._c = {}
    ptrs = cache.get(spec[0][1] + spec[-1][1])
    if ptrs is None:
        ptrs = cache[spec[0][1] + spec[-1][1]] = tuple(
            ffi.from_buffer(ctype, getattr(batch, attr), require_writable=True) for attr, ctype in spec)
    return ptrs


ADD_SPEC = (("chains", "struct ring_add[]"), ("segs", "struct ring_seg[]"))
POP_SPEC = (("chains", "struct ring_popped[]"), ("segs", "struct ring_seg[]"))
PUSH_SPEC = (("chains", "struct ring_popped[]"),)
USED_SPEC = (("entries", "struct ring_used[]"),)


class CQueue:
    def __init__(self, side: str, mem: GuestMemory, cfg: QueueConfig, start: int | None) -> None:
        cfg.validate()
        self.ffi, self.lib = ffi, lib = _lib()
        self.mem = mem
        self.cfg = cfg
        self._map = _cmap(mem)
        c = ffi.new("struct ring_cfg *")
        c.size = cfg.size
        c.packed = cfg.layout == "packed"
        c.event_idx = cfg.event_idx
        c.indirect = cfg.indirect
        c.in_order = cfg.in_order
        c.desc, c.driver, c.device = cfg.desc, cfg.driver, cfg.device
        out = ffi.new("ring_queue **")
        err = lib.ring_queue_new(self._map.cmem, c, side == "device", start is not None,
                                 (start or 0) & 0xFFFFFFFF, out)
        if err:
            raise RingError(err, "queue set-up")
        self.q = ffi.gc(out[0], lib.ring_queue_free)
        self._u32 = ffi.new("uint32_t[1]")
        self._int = ffi.new("int[1]")
        self.size = cfg.size

    # -- state --
    @property
    def error(self) -> int:
        return self.lib.ring_error(self.q)

    @property
    def num_free(self) -> int:
        return self.lib.ring_num_free(self.q)

    @property
    def outstanding(self) -> int:
        return self.lib.ring_outstanding(self.q)

    in_flight = outstanding

    @property
    def state(self) -> int:
        return self.lib.ring_state(self.q)

    # -- driver --
    def add_batch(self, batch: ChainBatch) -> tuple[int, bool]:
        chains, segs = _ptrs(batch, self.ffi, ADD_SPEC)
        err = self.lib.ring_drv_add(self.q, chains, batch.count, segs, batch.nsegs, self._u32, self._int)
        if err:
            raise RingError(err, count=self._u32[0])
        return self._u32[0], bool(self._int[0])

    def collect_batch(self, out: UsedBatch) -> int:
        (entries,) = _ptrs(out, self.ffi, USED_SPEC)
        err = self.lib.ring_drv_collect(self.q, entries, out.max_entries, self._u32)
        out.count = self._u32[0]
        if err:
            raise RingError(err, count=out.count)
        return out.count

    def enable_interrupts(self) -> bool:
        return bool(self.lib.ring_drv_enable_intr(self.q))

    def disable_interrupts(self) -> None:
        self.lib.ring_drv_disable_intr(self.q)

    # -- device --
    def pop_batch(self, batch: PopBatch) -> int:
        chains, segs = _ptrs(batch, self.ffi, POP_SPEC)
        err = self.lib.ring_dev_pop(self.q, chains, batch.max_chains, segs, batch.max_segs, self._u32)
        batch.count = self._u32[0]
        if err:
            raise RingError(err, count=batch.count)
        return batch.count

    def push_batch(self, batch: Any, fill: bool = False, coalesce: bool = False) -> bool:
        (items,) = _ptrs(batch, self.ffi, PUSH_SPEC)
        err = self.lib.ring_dev_push(self.q, items, batch.count, fill, coalesce, self._int)
        if err:
            raise RingError(err)
        return bool(self._int[0])

    def enable_notifications(self) -> bool:
        return bool(self.lib.ring_dev_enable_notify(self.q))

    def disable_notifications(self) -> None:
        self.lib.ring_dev_disable_notify(self.q)


def make(side: str, mem: GuestMemory, cfg: QueueConfig, start: int | None) -> CQueue:
    return CQueue(side, mem, cfg, start)


__all__ = ["make", "CQueue", "CMemMap", "RingErrorCode"]
