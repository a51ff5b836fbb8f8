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
            arr[i].gpa = r.gpa
            arr[i].size = r.size
            arr[i].host = self._host(r)
        self._keep.append(arr)
        self.cmem.regions = arr
        self.cmem.nregions = len(regions)

    def _host(self, r: Any) -> Any:
        """Host pointer of a region, pinned through the object at the bottom
        of its buffer (bytearray, mmap, ...), never through a memoryview: a
        memoryview holding a long-lived export must not meet the cycle
        collector, which tears it down while the export is live."""
        ffi = self.ffi
        root = r.view.obj
        base = ffi.from_buffer("uint8_t[]", root, require_writable=True)
        probe = ffi.from_buffer("uint8_t[]", r.view, require_writable=True)
        off = int(ffi.cast("uintptr_t", probe)) - int(ffi.cast("uintptr_t", base))
        ffi.release(probe)
        if off < 0 or off + r.size > len(base):
            raise RingError(RingErrorCode.BAD_CONFIG, "region buffer is not inside its exporter")
        self._keep.append(base)
        return base + off


def _cmap(mem: GuestMemory) -> CMemMap:
    ffi, _ = _lib()
    if mem._c_map is None:
        mem._c_map = CMemMap(ffi, mem)
    return mem._c_map


_SPECS = {
    "ChainBatch": (("chains", "struct ring_add[]"), ("segs", "struct ring_seg[]")),
    "PopBatch": (("chains", "struct ring_popped[]"), ("segs", "struct ring_seg[]")),
    "PushBatch": (("chains", "struct ring_popped[]"),),
    "UsedBatch": (("entries", "struct ring_used[]"),),
}


def _bind(batch: Any, ffi: Any) -> tuple:
    """C views of a batch's buffers, cached on it: its bytearrays never change size."""
    spec = _SPECS[type(batch).__name__]
    batch._c = tuple(ffi.from_buffer(ctype, getattr(batch, attr), require_writable=True)
                     for attr, ctype in spec)
    return batch._c


class CQueue:
    # errors are raised without being kept in a local, so no exception <->
    # frame cycle forms (conformance/adapters/ref.py checks this flag)
    _cycle_safe_errors = True

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
        # hot entry points looked up once
        self._add, self._collect = lib.ring_add, lib.ring_collect
        self._pop, self._push = lib.ring_pop, lib.ring_push

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
    def _fail(self, r: int) -> RingError:
        return RingError(-r, count=self.lib.ring_last_count(self.q))

    def add_batch(self, batch: ChainBatch) -> tuple[int, bool]:
        p = batch._c or _bind(batch, self.ffi)
        r = self._add(self.q, p[0], batch.count, p[1], batch.nsegs)
        if r < 0:
            raise self._fail(r)
        return r >> 1, (r & 1) == 1

    def collect_batch(self, out: UsedBatch) -> int:
        p = out._c or _bind(out, self.ffi)
        r = self._collect(self.q, p[0], out.max_entries)
        if r < 0:
            out.count = self.lib.ring_last_count(self.q)
            raise self._fail(r)
        out.count = r
        return r

    def enable_interrupts(self) -> bool:
        return bool(self.lib.ring_drv_enable_intr(self.q))

    def disable_interrupts(self) -> None:
        self.lib.ring_drv_disable_intr(self.q)

    # -- device --
    def pop_batch(self, batch: PopBatch) -> int:
        p = batch._c or _bind(batch, self.ffi)
        r = self._pop(self.q, p[0], batch.max_chains, p[1], batch.max_segs)
        if r < 0:
            batch.count = self.lib.ring_last_count(self.q)
            raise self._fail(r)
        batch.count = r
        return r

    def push_batch(self, batch: Any, fill: bool = False, coalesce: bool = False) -> bool:
        p = batch._c or _bind(batch, self.ffi)
        r = self._push(self.q, p[0], batch.count, fill, coalesce)
        if r < 0:
            raise RingError(-r)
        return r == 1

    def enable_notifications(self) -> bool:
        return bool(self.lib.ring_dev_enable_notify(self.q))

    def disable_notifications(self) -> None:
        self.lib.ring_dev_disable_notify(self.q)


def make(side: str, mem: GuestMemory, cfg: QueueConfig, start: int | None) -> CQueue:
    return CQueue(side, mem, cfg, start)


__all__ = ["make", "CQueue", "CMemMap", "RingErrorCode"]
