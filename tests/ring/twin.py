"""Drive the Python and C backends side by side over identical memory.

An operation list (plain tuples, so hypothesis can build and shrink them and
the sanitizer run can replay seeded random ones) is applied to both; after
every operation the results (value or error code) and every byte of guest
memory must agree.
"""
from __future__ import annotations

import random
from dataclasses import dataclass

from device_ref.ring import (ChainBatch, DeviceQueue, DriverQueue, GuestMemory, PopBatch,
                             PushBatch, RingError, place_rings)

BASE = 0x100000
SIZE = 0x10000
END = BASE + SIZE
BUFS = BASE + 0x8000
TABLES = BASE + 0xC000
ADDRS = (lambda off: BUFS + off, lambda off: END - 4, lambda off: 0x1000 + off,
         lambda off: (1 << 64) - 16 + (off % 16))


@dataclass(frozen=True)
class Params:
    layout: str
    size: int
    event_idx: bool
    indirect: bool
    in_order: bool


class Side:
    def __init__(self, p: Params, backend: str) -> None:
        self.buf = bytearray(SIZE)
        self.mem = GuestMemory()
        self.mem.add_region(BASE, self.buf)
        self.cfg = place_rings(p.layout, p.size, BASE, event_idx=p.event_idx,
                               indirect=p.indirect, in_order=p.in_order)
        self.drv = DriverQueue(self.mem, self.cfg, backend=backend)
        self.dev = DeviceQueue(self.mem, self.cfg, backend=backend)
        self.pop = PopBatch(4, max(4, p.size))

    def area(self, which: int) -> tuple[int, int]:
        from device_ref.ring import ring_areas
        a = ring_areas(self.cfg.layout, self.cfg.size)
        return [(self.cfg.desc, a.desc.size), (self.cfg.driver, a.driver.size),
                (self.cfg.device, a.device.size), (TABLES, 0x1000)][which]


def _segs(spec) -> tuple[list, list]:
    out, in_ = [], []
    for kind, off, ln, writable in spec:
        addr = ADDRS[kind](off)
        (in_ if writable else out).append((addr, ln))
    return out, in_


def apply(side: Side, op: tuple, token: int, inflight: list[int]):
    """Run one operation; returns a comparable result."""
    kind = op[0]
    try:
        if kind == "add":
            _, spec, indirect, slot = op
            out, in_ = _segs(spec)
            return ("notify", side.drv.add(out, in_, token, indirect=TABLES + 0x100 * slot if indirect else 0))
        if kind == "batch":
            b = ChainBatch(len(op[1]), 64)
            for i, (spec, indirect, slot) in enumerate(op[1]):
                out, in_ = _segs(spec)
                b.append(out, in_, token + i, TABLES + 0x100 * slot if indirect else 0)
            return ("batch", side.drv.add_batch(b))
        if kind == "pop":
            side.pop.max_chains = min(op[1], 4)
            n = side.dev.pop_batch(side.pop)
            chains = side.pop.chain_list()
            return ("pop", n, [(c.id, c.segments) for c in chains])
        if kind == "push":
            _, picks, written, coalesce = op
            items = []
            for p in picks:
                cid = inflight[p % len(inflight)] if inflight and p < 1000 else p
                items.append((cid, written))
            if written == -1:
                b = PushBatch((cid, 0) for cid, _ in items)
                return ("push", side.dev.push_batch(b, fill=True, coalesce=coalesce))
            return ("push", side.dev.push_many(items, coalesce=coalesce))
        if kind == "collect":
            return ("collect", side.drv.collect())
        if kind == "events":
            return ("events", [side.dev.enable_notifications, side.dev.disable_notifications,
                               side.drv.enable_interrupts, side.drv.disable_interrupts][op[1]]())
        if kind == "corrupt":
            _, which, off, data = op
            start, length = side.area(which)
            off %= length
            data = data[:length - off]
            side.buf[start - BASE + off:start - BASE + off + len(data)] = data
            return ("corrupt",)
    except RingError as e:
        return ("error", e.code, e.count)
    raise AssertionError(f"unknown op {op!r}")


def state(side: Side):
    return (side.drv.num_free, side.drv.outstanding, side.drv.error, side.dev.state,
            side.dev.in_flight, side.dev.error)


def run_twin(p: Params, ops: list[tuple], backends=("python", "c")) -> list:
    """Apply `ops` to every backend in lockstep; assert they agree. Returns the results."""
    sides = [Side(p, b) for b in backends]
    token = 1
    inflight: list[int] = []
    results = []
    for op in ops:
        res = [apply(s, op, token, inflight) for s in sides]
        for r in res[1:]:
            assert r == res[0], f"{op!r}: {backends[0]} gave {res[0]!r}, other gave {r!r}"
        for s in sides[1:]:
            assert s.buf == sides[0].buf, f"{op!r}: guest memory differs"
            assert state(s) == state(sides[0]), f"{op!r}: state {state(sides[0])} vs {state(s)}"
        r = res[0]
        if r[0] == "pop":
            inflight.extend(cid for cid, _ in r[2])
        elif r[0] == "push" and op[0] == "push":
            inflight[:] = [c for c in inflight if c not in _pushed(op, inflight)]
        token += 16
        results.append(r)
    return results


def _pushed(op, inflight):
    return {inflight[p % len(inflight)] if inflight and p < 1000 else p for p in op[1]}


# ---- seeded random operations (for the sanitizer run; hypothesis has its own strategies) ----

def random_params(rng: random.Random) -> Params:
    layout = rng.choice(["split", "packed"])
    size = rng.choice([1, 2, 4, 8, 16] if layout == "split" else [1, 2, 3, 4, 5, 8, 16])
    return Params(layout, size, rng.random() < 0.5, rng.random() < 0.6, rng.random() < 0.4)


def random_segspec(rng: random.Random):
    n = rng.randint(1, 4)
    nout = rng.randint(0, n)
    return tuple((rng.choice([0] * 12 + [1, 2, 3]), rng.randrange(0, 0x3000, 8), rng.randint(0, 64), i >= nout)
                 for i in range(n))


def random_op(rng: random.Random) -> tuple:
    k = rng.random()
    if k < 0.25:
        return ("add", random_segspec(rng), rng.random() < 0.3, rng.randrange(8))
    if k < 0.32:
        return ("batch", tuple((random_segspec(rng), rng.random() < 0.3, rng.randrange(8))
                               for _ in range(rng.randint(1, 5))))
    if k < 0.52:
        return ("pop", rng.randint(1, 4))
    if k < 0.70:
        picks = tuple(rng.choice([0, 1, 2, 3, 0, 1, 5000]) for _ in range(rng.randint(1, 3)))
        return ("push", picks, rng.choice([0, 0, 4, 16, 100, -1]), rng.random() < 0.3)
    if k < 0.85:
        return ("collect",)
    if k < 0.92:
        return ("events", rng.randrange(4))
    return ("corrupt", rng.randrange(4), rng.randrange(0, 512),
            bytes(rng.randrange(256) for _ in range(rng.randint(1, 8))))


def random_run(seed: int, nops: int = 60, backends=("python", "c")) -> list:
    rng = random.Random(seed)
    return run_twin(random_params(rng), [random_op(rng) for _ in range(nops)], backends)
