"""The C backend: thin wrappers that hand whole batch buffers to ring.c."""
from __future__ import annotations

import functools
from typing import Any

from .batch import ChainBatch, PopBatch, UsedBatch, check_capacity
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


def _spec(batch: Any) -> tuple:
    """Buffer layout of a batch (or of the batch class it derives from)."""
    for cls in type(batch).__mro__:
        if cls.__name__ in _SPECS:
            return _SPECS[cls.__name__]
    raise RingError(RingErrorCode.BAD_REQUEST, f"not a batch: {type(batch).__name__}")


def _bind(batch: Any, ffi: Any) -> tuple:
    """C views of a batch's buffers, cached on it: its bytearrays never change size.

    The tuple holds pointers of the exact parameter types first (cffi passes
    those without a type conversion), then the buffer exports that pin the
    memory they point into."""
    spec = _spec(batch)
    pins = tuple(ffi.from_buffer(ctype, getattr(batch, attr), require_writable=True)
                 for attr, ctype in spec)
    ptrs = tuple(ffi.cast(ctype[:-2] + " *", pin) for (_, ctype), pin in zip(spec, pins))
    batch._c = ptrs + pins
    return batch._c


def _bind_addr(batch: Any, ffi: Any) -> tuple:
    """The same pointers as plain integers, each followed by its buffer's
    capacity in records, for the call glue (pinned by _bind)."""
    spec = _spec(batch)
    p = batch._c or _bind(batch, ffi)
    out: list[int] = []
    for ptr, pin in zip(p[:len(spec)], p[len(spec):]):
        out += [int(ffi.cast("uintptr_t", ptr)), len(pin)]
    batch._ca = tuple(out)
    return batch._ca


def _load_glue() -> Any:
    try:
        from . import _ring_glue
    except ImportError:     # not built: cffi's own calls still work
        return None
    return _ring_glue


# the call glue (ring_glue.c), or None to call through cffi; tests switch it off
_glue = _load_glue()


def _ring_error(code: int, count: int | None) -> RingError:
    """The error a glue call raises (count None: the call does not report one)."""
    return RingError(code) if count is None else RingError(code, count=count)


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
        self._bind_batch_calls()

    def _bind_batch_calls(self) -> None:
        """The four batch calls, bound to a plain queue pointer.

        They are what DriverQueue/DeviceQueue.add_batch (etc.) point at.  With
        the call glue built they are C callables (ring_glue.BatchCall) that
        read the batch's attributes and call the core directly; without it,
        closures calling through cffi (one Python frame, arguments of exactly
        the declared types).  Either keeps the queue, its memory map and the
        guest memory alive for as long as it exists, since the raw pointer
        does not.  Errors are raised without being kept in a local, so no
        exception <-> frame cycle forms."""
        ffi, lib = self.ffi, self.lib
        qp = ffi.cast("ring_queue *", self.q)
        keep = (self.q, self._map, self.mem)
        c_add, c_collect, c_pop, c_push = lib.ring_add, lib.ring_collect, lib.ring_pop, lib.ring_push
        last_count = lib.ring_last_count
        glue = _glue
        if glue is not None:
            # the same four calls as C callables (ring_glue.c): no Python frame,
            # no cffi argument conversion, no GIL release per batch
            addr = lambda name: int(ffi.cast("uintptr_t", ffi.addressof(lib, name)))  # noqa: E731
            qa = int(ffi.cast("uintptr_t", qp))
            lc = addr("ring_last_count")
            bind = functools.partial(_bind_addr, ffi=ffi)
            calls = [glue.BatchCall(kind, addr(name), qa, lc, bind, _ring_error, keep)
                     for kind, name in enumerate(("ring_add", "ring_collect", "ring_pop", "ring_push"))]
            self.add_batch, self.collect_batch, self.pop_batch, self.push_batch = calls
            return

        # without the glue: closures calling through cffi
        def add_batch(batch: ChainBatch) -> tuple[int, bool]:
            check_capacity(batch, "add")
            p = batch._c or _bind(batch, ffi)
            r = c_add(qp, p[0], batch.count, p[1], batch.nsegs)
            if r < 0:
                raise RingError(-r, count=last_count(qp))
            return r >> 1, (r & 1) == 1

        def collect_batch(out: UsedBatch) -> int:
            check_capacity(out, "collect")
            p = out._c or _bind(out, ffi)
            r = c_collect(qp, p[0], out.max_entries)
            if r < 0:
                out.count = last_count(qp)
                raise RingError(-r, count=out.count)
            out.count = r
            return r

        def pop_batch(batch: PopBatch) -> int:
            check_capacity(batch, "pop")
            p = batch._c or _bind(batch, ffi)
            r = c_pop(qp, p[0], batch.max_chains, p[1], batch.max_segs)
            if r < 0:
                batch.count = last_count(qp)
                raise RingError(-r, count=batch.count)
            batch.count = r
            return r

        def push_batch(batch: Any, fill: bool = False, coalesce: bool = False) -> bool:
            check_capacity(batch, "push")
            p = batch._c or _bind(batch, ffi)
            r = c_push(qp, p[0], batch.count, fill, coalesce)
            if r < 0:
                raise RingError(-r)
            return r == 1

        for fn in (add_batch, collect_batch, pop_batch, push_batch):
            fn._keep = keep
        self.add_batch, self.collect_batch = add_batch, collect_batch
        self.pop_batch, self.push_batch = pop_batch, push_batch

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
    def enable_interrupts(self) -> bool:
        return bool(self.lib.ring_drv_enable_intr(self.q))

    def disable_interrupts(self) -> None:
        self.lib.ring_drv_disable_intr(self.q)

    # -- device --
    def enable_notifications(self) -> bool:
        return bool(self.lib.ring_dev_enable_notify(self.q))

    def disable_notifications(self) -> None:
        self.lib.ring_dev_disable_notify(self.q)


def make(side: str, mem: GuestMemory, cfg: QueueConfig, start: int | None) -> CQueue:
    return CQueue(side, mem, cfg, start)


__all__ = ["make", "CQueue", "CMemMap", "RingErrorCode"]
