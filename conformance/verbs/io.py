"""Ordinary traffic (``device_io``) and its checks."""
from __future__ import annotations

import struct

from device_ref.virtio_constants import BLK_SECTOR as SECTOR
from device_ref.virtio_constants import BLK_T_IN, BLK_T_OUT

from conformance.engine.core import Engine, IoTally, Pending
from conformance.engine.registry import INT, MAX_REQUESTS, TEXT, action, expectation
from conformance.outcomes import Failed, Skipped
from conformance.verbs.blk import capacity


def _sector_data(i: int) -> bytes:
    """512 bytes that differ for every request number (cheap, deterministic)."""
    word = (0x9E3779B97F4A7C15 * (i + 1)) & (2**64 - 1)
    return word.to_bytes(8, "little") * (SECTOR // 8)


def _judge(e: Engine, pending: list[Pending], first: int) -> None:
    """Check one finished batch against what ``expect io`` requires and keep
    only a tally: no per-request object outlives its batch."""
    tally = e.io
    assert tally is not None
    for n, p in enumerate(pending, first + 1):
        tally.requests += 1
        if tally.problem is not None:
            continue
        if not p.done:
            tally.problem = (f"request {n} was never used", "every request used")
        elif p.kind == "blk" and p.status != 0:
            tally.problem = (f"request {n} ({'read' if p.count else 'write'} of sector "
                             f"{p.sector}) ended with status {p.status}", "status OK (0)")
        elif p.kind == "blk" and p.count:
            want = e.io_written.get(p.sector)
            if want is not None and (p.data or b"")[:SECTOR] != want:
                tally.problem = (f"sector {p.sector} read back differs from what was written",
                                 "the data written")
        elif p.kind == "rng" and not p.used_len:
            tally.problem = (f"entropy request {n} used with length {p.used_len}",
                             "used length > 0")


def _run_batch(e: Engine, q, requests: list[tuple[list, Pending]], first: int) -> None:
    mark = len(e.completions)
    toks = [e.submit(q, parts, p, kick=False) for parts, p in requests]
    e.kick([q])                    # one notification per batch
    e.wait_all(toks)
    _judge(e, [p for _parts, p in requests], first)
    del e.completions[mark:]       # judged: the tally keeps what expect io needs


SLOW_LIMIT = 4096      # requests device_io makes over a slow_notify session


@action("device_io", count=INT.range(1, MAX_REQUESTS), batch=INT.range(1, 4096).with_default(1))
def device_io(e: Engine, count: int, batch: int = 1) -> None:
    if not e.running():
        raise Skipped("device_io before DRIVER_OK")
    if e.device_type not in ("blk", "rng", "net", "console"):
        raise Skipped(f"no ordinary request is defined for a {e.device_type} device")
    if count > SLOW_LIMIT and e.s.slow_notify:
        raise Skipped(f"{count} requests over this transport would take minutes: each "
                      f"notification stops and resumes the machine")
    q = e.request_queue()
    e.io = IoTally()
    # a batch never holds more requests than the queue has entries (QEMU's
    # virtio-rng has 8): the rest would find the ring full before the kick
    batch = max(1, min(batch, q.cfg.size))
    if e.device_type == "blk":
        cap = max(1, capacity(e))
        for start in range(0, count, batch):
            reqs = []
            for i in range(start, min(count, start + batch)):
                data = _sector_data(i)
                sec = i % cap              # sectors 0, 1, ... wrapping at the capacity
                e.io_written[sec] = data
                reqs.append(([("r", struct.pack("<IIQ", BLK_T_OUT, 0, sec)), ("r", data),
                              ("w", 1)], Pending("blk", q.index, [], sector=sec, count=0)))
            _run_batch(e, q, reqs, start)
        for start in range(0, min(count, cap), batch):
            reqs = [([("r", struct.pack("<IIQ", BLK_T_IN, 0, i)), ("w", SECTOR), ("w", 1)],
                     Pending("blk", q.index, [], sector=i, count=1))
                    for i in range(start, min(count, cap, start + batch))]
            _run_batch(e, q, reqs, count + start)
    else:
        for start in range(0, count, batch):
            reqs = [e.ordinary_parts() for _ in range(start, min(count, start + batch))]
            _run_batch(e, q, reqs, start)


@expectation("io", what=TEXT)
def expect_io(e: Engine, what: str) -> None:
    if e.io is None or not e.io.requests:
        raise Failed("no device_io requests were made", "requests of the last device_io")
    if e.io.problem is not None:
        raise Failed(*e.io.problem)
