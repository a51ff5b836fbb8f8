"""Ordinary traffic (``device_io``) and its checks."""
from __future__ import annotations

import struct

from device_ref.virtio_constants import BLK_SECTOR as SECTOR
from device_ref.virtio_constants import BLK_T_IN, BLK_T_OUT

from conformance.engine.core import Engine, Pending
from conformance.engine.registry import INT, MAX_REQUESTS, TEXT, action, expectation
from conformance.outcomes import Failed, Skipped
from conformance.verbs.blk import capacity


def _sector_data(i: int) -> bytes:
    """512 bytes that differ for every request number (cheap, deterministic)."""
    word = (0x9E3779B97F4A7C15 * (i + 1)) & (2**64 - 1)
    return word.to_bytes(8, "little") * (SECTOR // 8)


SLOW_LIMIT = 4096      # requests device_io makes over a slow_notify session


@action("device_io", count=INT.range(1, MAX_REQUESTS), batch=INT.range(1, 4096).with_default(1))
def device_io(e: Engine, count: int, batch: int = 1) -> None:
    if not e.running():
        raise Skipped("device_io before DRIVER_OK")
    if count > SLOW_LIMIT and e.s.slow_notify:
        raise Skipped(f"{count} requests over this transport would take minutes: each "
                      f"notification stops and resumes the machine")
    q = e.request_queue()
    e.io = []
    # a batch never holds more requests than the queue has entries (QEMU's
    # virtio-rng has 8): the rest would find the ring full before the kick
    batch = max(1, min(batch, q.cfg.size))
    if e.device_type == "blk":
        cap = max(1, capacity(e))
        for start in range(0, count, batch):
            toks = []
            for i in range(start, min(count, start + batch)):
                data = _sector_data(i)
                sec = i % cap              # sectors 0, 1, ... wrapping at the capacity
                e.io_written[sec] = data
                p = Pending("blk", q.index, [], sector=sec, count=0)
                p.data = data
                e.io.append(p)
                toks.append(e.submit(q, [("r", struct.pack("<IIQ", BLK_T_OUT, 0, sec)),
                                             ("r", data), ("w", 1)], p, kick=False))
            e.kick([q])            # one notification per batch
            e.wait_all(toks)
        for start in range(0, min(count, cap), batch):
            toks = []
            for i in range(start, min(count, cap, start + batch)):
                p = Pending("blk", q.index, [], sector=i, count=1)
                e.io.append(p)
                toks.append(e.submit(q, [("r", struct.pack("<IIQ", BLK_T_IN, 0, i)),
                                             ("w", SECTOR), ("w", 1)], p, kick=False))
            e.kick([q])
            e.wait_all(toks)
    elif e.device_type == "rng":
        for start in range(0, count, batch):
            toks = []
            for _ in range(start, min(count, start + batch)):
                p = Pending("rng", q.index, [])
                e.io.append(p)
                toks.append(e.submit(q, [("w", 64)], p, kick=False))
            e.kick([q])
            e.wait_all(toks)
    else:
        raise Skipped(f"no ordinary request is defined for a {e.device_type} device")


@expectation("io", what=TEXT)
def expect_io(e: Engine, what: str) -> None:
    if not e.io:
        raise Failed("no device_io requests were made", "requests of the last device_io")
    e.collect()
    for i, p in enumerate(e.io):
        if not p.done:
            raise Failed(f"request {i + 1} of {len(e.io)} was never used",
                         "every request used")
        if p.kind == "blk":
            if p.status != 0:
                raise Failed(f"request {i + 1} ({'read' if p.count else 'write'} of sector "
                             f"{p.sector}) ended with status {p.status}", "status OK (0)")
            if p.count:
                want = e.io_written.get(p.sector)
                got = (p.data or b"")[:SECTOR]
                if want is not None and got != want:
                    raise Failed(f"sector {p.sector} read back differs from what was "
                                 f"written", "the data written")
        elif p.kind == "rng" and not p.used_len:
            raise Failed(f"entropy request {i + 1} used with length {p.used_len}",
                         "used length > 0")
    counts: dict[int, int] = {}
    for c in e.completions:
        counts[c.token] = counts.get(c.token, 0) + 1
    twice = [t for t, n in counts.items() if n > 1]
    if twice:
        raise Failed(f"{len(twice)} request(s) used more than once", "each used once")
