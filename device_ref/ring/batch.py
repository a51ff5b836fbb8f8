"""Fixed-capacity batch buffers shared by both backends.

Each buffer is a bytearray of little-endian records, so the C core reads
and fills it in place (no per-item Python work) and the Python twin uses
struct on the same bytes.  Record layouts match the structs in ring.h.
"""
from __future__ import annotations

import struct
from typing import Any, Iterable, NamedTuple, Sequence

from .errors import RingError, RingErrorCode

SEG = struct.Struct("<QII")        # struct ring_seg: addr, len, flags (bit 0: device-writable)
ADD = struct.Struct("<IIQQ")       # struct ring_add: nseg, reserved, indirect table addr (0: none), token
POPPED = struct.Struct("<IIII")    # struct ring_popped: id, nseg, writable len, written len
USED = struct.Struct("<QII")       # struct ring_used: token, len, reserved
SEG_WRITABLE = 1
WRITTEN = struct.Struct("<I")      # ring_popped.written on its own
WRITTEN_AT = 12


class Segment(NamedTuple):
    """One translated segment of a popped chain (a named tuple: cheap to make)."""
    gpa: int
    len: int
    writable: bool


class Chain(NamedTuple):
    """A buffer the device popped: its id and its segments, in ring order."""
    id: int
    segments: tuple[Segment, ...]

    @property
    def readable(self) -> tuple[Segment, ...]:
        return tuple(s for s in self.segments if not s.writable)

    @property
    def writable(self) -> tuple[Segment, ...]:
        return tuple(s for s in self.segments if s.writable)

    @property
    def readable_len(self) -> int:
        return sum(s.len for s in self.segments if not s.writable)

    @property
    def writable_len(self) -> int:
        return sum(s.len for s in self.segments if s.writable)


class ChainBatch:
    """Driver input: chains to add (segments plus token, optional indirect table)."""

    # slots: the C backend's call glue reads them at fixed offsets, with no
    # attribute look-up per batch (ring_glue.c)
    __slots__ = ("max_chains", "max_segs", "segs", "chains", "count", "nsegs", "_c", "_ca")

    def __init__(self, max_chains: int, max_segs: int) -> None:
        self.max_chains = max_chains
        self.max_segs = max_segs
        self.segs = bytearray(SEG.size * max_segs)
        self.chains = bytearray(ADD.size * max_chains)
        self.count = 0
        self.nsegs = 0
        self._c = None     # C backend: cffi pointers and the exports pinning them
        self._ca = None    # C backend: the same pointers as integers

    def clear(self) -> None:
        self.count = 0
        self.nsegs = 0

    def append(self, out: Sequence[tuple[int, int]], in_: Sequence[tuple[int, int]],
               token: int, indirect: int = 0) -> None:
        """Add one chain: device-readable `out` then device-writable `in_` (gpa, len) pairs."""
        n = len(out) + len(in_)
        if self.count >= self.max_chains or self.nsegs + n > self.max_segs:
            raise RingError(RingErrorCode.BAD_REQUEST, "chain batch is full")
        i = self.nsegs
        for gpa, ln in out:
            SEG.pack_into(self.segs, SEG.size * i, gpa, ln, 0)
            i += 1
        for gpa, ln in in_:
            SEG.pack_into(self.segs, SEG.size * i, gpa, ln, SEG_WRITABLE)
            i += 1
        ADD.pack_into(self.chains, ADD.size * self.count, n, 0, indirect, token)
        self.nsegs = i
        self.count += 1

    def append_pair(self, out_gpa: int, out_len: int, in_gpa: int, in_len: int,
                    token: int) -> None:
        """Add a chain of one device-readable and one device-writable
        segment (``append`` for the commonest shape, without its loops)."""
        i = self.nsegs
        if self.count >= self.max_chains or i + 2 > self.max_segs:
            raise RingError(RingErrorCode.BAD_REQUEST, "chain batch is full")
        SEG.pack_into(self.segs, SEG.size * i, out_gpa, out_len, 0)
        SEG.pack_into(self.segs, SEG.size * (i + 1), in_gpa, in_len, SEG_WRITABLE)
        ADD.pack_into(self.chains, ADD.size * self.count, 2, 0, 0, token)
        self.nsegs = i + 2
        self.count += 1


class PopBatch:
    """Device output: popped chains and their translated segments."""

    __slots__ = ("max_chains", "max_segs", "segs", "chains", "count", "_c", "_ca")

    def __init__(self, max_chains: int, max_segs: int) -> None:
        self.max_chains = max_chains
        self.max_segs = max_segs
        self.segs = bytearray(SEG.size * max_segs)
        self.chains = bytearray(POPPED.size * max_chains)
        self.count = 0
        self._c = None     # C backend: cffi pointers and the exports pinning them
        self._ca = None    # C backend: the same pointers as integers

    def chain(self, i: int) -> Chain:
        return self.chain_list()[i]

    def chain_list(self) -> list[Chain]:
        # tuple.__new__ skips the named tuples' Python-level constructors:
        # this runs for every chain a device pops
        out = []
        make = tuple.__new__
        nxt = SEG.iter_unpack(self.segs).__next__
        for cid, nseg, _w, _written in POPPED.iter_unpack(memoryview(self.chains)[:POPPED.size * self.count]):
            if nseg == 2:   # the usual request: one part each way
                a, la, fa = nxt()
                b, lb, fb = nxt()
                segs = (make(Segment, (a, la, fa & SEG_WRITABLE == SEG_WRITABLE)),
                        make(Segment, (b, lb, fb & SEG_WRITABLE == SEG_WRITABLE)))
            else:
                segs = tuple([make(Segment, (a, ln, f & SEG_WRITABLE == SEG_WRITABLE))
                              for a, ln, f in (nxt() for _ in range(nseg))])
            out.append(make(Chain, (cid, segs)))
        return out

    def set_written(self, i: int, written: int) -> None:
        """Record how many bytes the device wrote into chain `i` (used by push_batch)."""
        WRITTEN.pack_into(self.chains, POPPED.size * i + WRITTEN_AT, written)

    def records(self) -> list[tuple[int, int, int, int]]:
        """(id, nseg, writable_len, written) for each popped chain."""
        return [POPPED.unpack_from(self.chains, POPPED.size * k) for k in range(self.count)]


class PushBatch:
    """Device input for push_batch when ids do not come from a PopBatch."""

    __slots__ = ("max_chains", "chains", "count", "_c", "_ca")

    def __init__(self, items: Iterable[tuple[int, int]]) -> None:
        items = list(items)
        self.max_chains = len(items)
        self.chains = bytearray(POPPED.size * max(1, len(items)))
        for k, (cid, written) in enumerate(items):
            POPPED.pack_into(self.chains, POPPED.size * k, cid, 0, 0, written)
        self.count = len(items)
        self._c = None     # C backend: cffi pointers and the exports pinning them
        self._ca = None    # C backend: the same pointers as integers


class UsedBatch:
    """Driver output: (token, used length) of collected buffers."""

    __slots__ = ("max_entries", "entries", "count", "_c", "_ca")

    def __init__(self, max_entries: int) -> None:
        self.max_entries = max_entries
        self.entries = bytearray(USED.size * max_entries)
        self.count = 0
        self._c = None     # C backend: cffi pointers and the exports pinning them
        self._ca = None    # C backend: the same pointers as integers

    def items(self) -> list[tuple[int, int]]:
        return [USED.unpack_from(self.entries, USED.size * k)[:2] for k in range(self.count)]


def check_capacity(batch: Any, op: str) -> None:
    """Refuse counts beyond a batch's buffers (they are plain attributes a
    caller can set) with BAD_REQUEST, before any ring work: the C core
    would read or write past the buffers.  `op`: add, collect, pop, push."""
    if op == "add":
        ok = batch.count <= len(batch.chains) // ADD.size and batch.nsegs <= len(batch.segs) // SEG.size
    elif op == "collect":
        ok = batch.max_entries <= len(batch.entries) // USED.size
    elif op == "pop":
        ok = batch.max_chains <= len(batch.chains) // POPPED.size and batch.max_segs <= len(batch.segs) // SEG.size
    else:
        ok = batch.count <= len(batch.chains) // POPPED.size
    if not ok:
        raise RingError(RingErrorCode.BAD_REQUEST, f"{op}: batch counts exceed its buffers")
