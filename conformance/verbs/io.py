"""Ordinary traffic (``device_io``) and its checks."""
from __future__ import annotations

import struct

from device_ref.virtio_constants import BLK_SECTOR as SECTOR
from device_ref.virtio_constants import BLK_T_IN, BLK_T_OUT
from device_ref.transport import TransportError

from conformance.engine.core import Batch, Engine, IoTally, Pending
from conformance.engine.registry import INT, MAX_REQUESTS, TEXT, action, expectation
from conformance.outcomes import Failed, Skipped, Wedged
from conformance.verbs.blk import capacity


def _sector_data(i: int) -> bytes:
    """512 bytes that differ for every request number (cheap, deterministic)."""
    word = (0x9E3779B97F4A7C15 * (i + 1)) & (2**64 - 1)
    return word.to_bytes(8, "little") * (SECTOR // 8)


def _run_batch(e: Engine, q, kind: str, requests: list[list], sectors: list[int],
               first: int) -> None:
    """Offer one batch, kick once, wait for all of it, and judge it from
    guest memory as a whole: the tally keeps what ``expect io`` needs, and
    nothing of a request outlives its batch. ``sectors``: blk, the sector
    each request writes (reads: -1 - the sector it reads)."""
    mark = len(e.completions)
    batch = e.submit_batch(q, requests)
    e.kick([q])                    # one notification per batch
    try:
        e.wait_batch(batch)
    except Wedged as exc:
        if first != e.io_restarted_at:
            raise
        # the first batch after the restart: what failed is resuming the
        # ring where it was told to, not the rule this traffic serves
        raise Skipped(f"the device did not use requests after queue {q.index} was restarted "
                      f"at a new index (GET_VRING_BASE, SET_VRING_BASE): {exc.observed}") \
            from None
    used = {c.token: c.used_len for c in e.completions[mark:]}
    del e.completions[mark:]       # judged below
    now = e.t.memory.read(batch.base, len(batch.data))
    tally = e.io
    assert tally is not None
    writable = [(o, n) for o, n, w in batch.shape if w]
    if kind == "blk" and sectors[0] >= 0 and _writes_all_fine(now, batch, writable, used):
        tally.requests += len(batch.tokens)       # the usual batch: nothing to say of it
    else:
        _judge_each(e, kind, batch, now, used, writable, sectors, first)
    if kind == "blk":
        # what the last request left, as a single request would leave it
        at = (len(batch.tokens) - 1) * batch.stride
        got = b"".join(now[at + o:at + o + ln] for o, ln in writable)
        sector = sectors[-1]
        e.last_blk = Pending("blk", q.index, [], sector=sector if sector >= 0 else -1 - sector,
                             count=int(sector < 0), done=batch.tokens[-1] in used,
                             used_len=used.get(batch.tokens[-1]), status=got[-1], data=got[:-1])
        e.last_blk_status = got[-1]
        if sector < 0:
            e.last_read = (-1 - sector, got[:-1])


def _writes_all_fine(now: bytes, batch: Batch, writable: list[tuple[int, int]],
                     used: dict[int, int]) -> bool:
    """A batch of blk writes with nothing to say of any request: every one
    used, every status 0, and no byte changed but the status bytes (strided
    slices over the whole batch, no loop over its requests)."""
    if len(writable) != 1 or writable[0][1] != 1 or not used.keys() >= set(batch.tokens):
        return False
    at, stride = writable[0][0], batch.stride
    if now[at::stride] != bytes(len(batch.tokens)):
        return False
    expect = bytearray(batch.data)
    expect[at::stride] = now[at::stride]
    return expect == now


def _judge_each(e: Engine, kind: str, batch: Batch, now: bytes, used: dict[int, int],
                writable: list[tuple[int, int]], sectors: list[int], first: int) -> None:
    """Each request of the batch in turn; the first problem goes in the tally."""
    tally = e.io
    assert tally is not None
    e.readable_corrupted += [f"{n}-byte device-readable buffer at {addr:#x}"
                             for addr, n in batch.changed_readable(now)]
    stride = batch.stride
    for i, token in enumerate(batch.tokens):
        at = i * stride
        tally.requests += 1
        if tally.problem is not None:
            continue
        n = first + i + 1
        if token not in used:
            tally.problem = (f"request {n} was never used", "every request used")
        elif kind == "rng":
            if not used[token]:
                tally.problem = (f"entropy request {n} used with length {used[token]}",
                                 "used length > 0")
        else:
            got = b"".join(now[at + o:at + o + ln] for o, ln in writable)
            status, sector = got[-1], sectors[i]
            if status != 0:
                what = f"write of sector {sector}" if sector >= 0 else f"read of sector {-1 - sector}"
                tally.problem = (f"request {n} ({what}) ended with status {status}",
                                 "status OK (0)")
            elif sector < 0:
                want = e.io_written.get(-1 - sector)
                if want is not None and got[:SECTOR] != want:
                    tally.problem = (f"sector {-1 - sector} read back differs from what was "
                                     f"written", "the data written")


SLOW_LIMIT = 4096      # requests device_io makes over a slow_notify session
WRAP = 1 << 16         # split ring indices count modulo this
LEAD = 4               # batches walked before the wrap when the ring is restarted near it


def _skip_to_wrap(e: Engine, q, count: int, batch: int) -> int:
    """How many of ``count`` requests need not be made: where the transport
    can restart a ring at an index (vhost-user's SET_VRING_BASE), a split
    ring that would go round the 16-bit index space is restarted ``LEAD``
    batches before the last wrap, and only the requests from there on are
    made. The device ends where the whole walk would leave it (avail and
    used idx ``count`` further on, modulo 2^16) and still crosses the wrap
    under load; each wrap before the last is the same crossing again."""
    if count < WRAP or q.packed or q.inflight:
        return 0
    end = (q.last_used + count) % WRAP
    walk = end + LEAD * batch
    start = (end - walk) % WRAP
    try:
        if not e.t.restart_queue_at(q.index, start, lambda: q.rebase(start)):
            return 0
    except TransportError as exc:
        raise Skipped(f"restarting queue {q.index} at index {start} to reach the wrap "
                      f"failed: {exc}") from None
    e.io_restarted_at = count - walk
    e.remarks.append(f"queue {q.index} restarted at index {start} (SET_VRING_BASE) to reach "
                     f"the wrap in {walk} requests instead of {count}")
    return count - walk


@action("device_io", count=INT.range(1, MAX_REQUESTS), batch=INT.range(1, 4096).with_default(1))
def device_io(e: Engine, count: int, batch: int = 1) -> None:
    if not e.running():
        raise Skipped("device_io before DRIVER_OK")
    if e.device_type == "net":
        # Frames go out to the device's network; one that returns them (QEMU's
        # hub, testpmd's forwarding) holds those it has no receive buffer for
        # and hands them to the receive buffers of a later test, which would
        # then judge frames it never sent.
        raise Skipped("device_io sends no frames to a net device: a network that returns "
                      "them would deliver them into later tests' receive buffers")
    if e.device_type == "console":
        # its ordinary output goes to transmitq0, queue 1: checks that set up
        # queue 0 alone for device_io (its MSI-X vector, say) would judge it
        raise Skipped("device_io sends nothing to a console: its output goes to transmitq0 "
                      "(queue 1), not the queue 0 such checks prepare")
    if e.device_type not in ("blk", "rng"):
        raise Skipped(f"no ordinary request is defined for a {e.device_type} device")
    if count > SLOW_LIMIT and e.s.slow_notify:
        raise Skipped(f"{count} requests over this transport would take minutes: each "
                      f"notification stops and resumes the machine")
    q = e.request_queue()
    e.io = IoTally()
    # a batch never holds more requests than the queue has entries (QEMU's
    # virtio-rng has 8): the rest would find the ring full before the kick
    batch = max(1, min(batch, q.cfg.size))
    first = _skip_to_wrap(e, q, count, batch)
    if e.device_type == "blk":
        cap = max(1, capacity(e))
        # a batch's chains (three descriptors each) fit the ring together
        batch = max(1, min(batch, q.cfg.size // 3))
        for start in range(first, count, batch):
            reqs, sectors = [], []
            for i in range(start, min(count, start + batch)):
                data = _sector_data(i)
                sec = i % cap              # sectors 0, 1, ... wrapping at the capacity
                e.io_written[sec] = data
                reqs.append([("r", struct.pack("<IIQ", BLK_T_OUT, 0, sec)), ("r", data),
                             ("w", 1)])
                sectors.append(sec)
            _run_batch(e, q, "blk", reqs, sectors, start)
        # read back every sector written (all of them once the writes went round)
        written = sorted({i % cap for i in range(max(first, count - cap), count)})
        for start in range(0, len(written), batch):
            sectors = written[start:start + batch]
            reqs = [[("r", struct.pack("<IIQ", BLK_T_IN, 0, i)), ("w", SECTOR), ("w", 1)]
                    for i in sectors]
            _run_batch(e, q, "blk", reqs, [-1 - i for i in sectors], count + start)
    else:
        for start in range(first, count, batch):
            n = min(count, start + batch) - start
            _run_batch(e, q, "rng", [e.ordinary_parts()[0] for _ in range(n)], [], start)


@expectation("io", what=TEXT)
def expect_io(e: Engine, what: str) -> None:
    if e.io is None or not e.io.requests:
        raise Failed("no device_io requests were made", "requests of the last device_io")
    if e.io.problem is not None:
        raise Failed(*e.io.problem)
