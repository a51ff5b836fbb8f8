"""The driver the runner plays: one method per check-step verb.

``Harness`` executes the steps of one test against one ``Session``. It lays
out rings (``rings.py``), builds requests, kicks, and collects completions,
and it remembers what it observed (used lengths, status bytes, data read
back, notifications) for the expectations that follow. Every verb of the
vocabulary (docs/check-actions.md) has a method found by name:
``pre_<verb>`` and ``act_<verb>`` here, ``expect_<verb>`` in
``expectations.py``, the queue-encryption steps in ``qenc_steps.py``.
"""
from __future__ import annotations

import inspect
import random
import re
import struct
import time
from dataclasses import dataclass, field

from device_ref.ring import PACKED, SPLIT, ring_areas
from device_ref.ring.layout import QueueConfig as RingQueueConfig
from device_ref.transport import QueueConfig, TransportError

from conformance import names, shapes
from conformance.adapters.base import Session
from conformance.expectations import DRIVER_MODE, Expectations
from conformance.outcomes import Failed, Skipped, Wedged
from conformance.qenc_steps import QencSteps
from conformance.rings import DESC_F_INDIRECT, DESC_F_NEXT, DESC_F_WRITE, DESC_FLAGS, Desc, HQueue
from conformance.vectors import Step

SECTOR = 512
QUEUE_SIZE = 256
ID_LEN = 20
CANARY = 0x5A
F_VERSION_1, F_RING_PACKED, F_SWIOTLB = 32, 34, 44
F_EVENT_IDX, F_INDIRECT, F_IN_ORDER = 29, 28, 35
FEATURES_OK, DRIVER_OK, NEEDS_RESET = 8, 4, 64
ACK, DRIVER = 1, 2


def _sector_data(i: int) -> bytes:
    """512 bytes that differ for every request number (cheap, deterministic)."""
    word = (0x9E3779B97F4A7C15 * (i + 1)) & (2**64 - 1)
    return word.to_bytes(8, "little") * (SECTOR // 8)



class Bump:
    """A bump allocator over one guest range (a test is short-lived)."""

    def __init__(self, base: int, size: int) -> None:
        self.base, self.size, self.next = base, size, base

    def alloc(self, length: int, align: int = 16) -> int:
        addr = -(-self.next // align) * align
        if addr + length > self.base + self.size:
            raise Skipped(f"harness ran out of guest memory ({self.size} bytes at "
                          f"{self.base:#x})")
        self.next = addr + length
        return addr


@dataclass
class Completion:
    queue: int
    token: int
    used_len: int


@dataclass
class Pending:
    kind: str                       # blk, rng, raw
    queue: int
    writable: list[tuple[int, int]]
    readable: list[tuple[int, int, bytes]] = field(default_factory=list)  # addr, len, data
    sector: int = 0
    count: int = 0
    done: bool = False
    used_len: int | None = None
    status: int | None = None
    data: bytes | None = None


class Harness(QencSteps, Expectations):
    def __init__(self, session: Session, layout: str, step_timeout: float = 2.0) -> None:
        self.s = session
        self.t = session.transport
        self.layout = layout
        self.timeout = step_timeout
        self.device_type = session.device_type
        self.negotiated = 0
        self.placement = "default"
        ram = self.t.ram_ranges()
        base, size = max(ram, key=lambda r: r[1])
        self.ram = Bump(base, size)
        self.region = session.bounce
        self.bounce = Bump(self.region.base, self.region.size) if self.region else None
        self.queues: list[HQueue] = []
        self.retired: list[HQueue] = []     # queues set up before the last (queue) reset
        self.driver_status = 0
        self.framing: tuple[str, int] = ("separate", 64)
        self.dma_mark: dict[int, int] = {}
        self.readable_log: list[tuple[int, int, bytes]] = []
        self.io: list[Pending] = []
        self.io_written: dict[int, bytes] = {}
        self.blk_before: tuple[int, bytes] | None = None
        self.last_blk: Pending | None = None
        self.used_event_pinned = False     # a vector set used_event: leave it alone
        self.pending: dict[int, Pending] = {}
        self.tokens = iter(range(1, 1 << 30))
        self.completions: list[Completion] = []
        self.since_kick: list[Completion] = []
        self.stray_used: list[str] = []           # used entries the driver never made available
        self.irqs_since_kick = 0
        self.config_irqs = 0
        self.last_blk_status: int | None = None
        self.last_read: tuple[int, bytes] | None = None
        self.written: dict[int, bytes] = {}        # sector -> data written this test
        self.last_id: bytes | None = None
        self.last_entropy: bytes | None = None
        self.features_ok_written = False
        self.readable_corrupted: list[str] = []
        self.outside_buf: int | None = None

    # ------------------------------------------------------------------ helpers
    def run_step(self, step: Step) -> None:
        prefix = {"precondition": "pre_", "action": "act_", "expectation": "expect_"}[step.kind]
        fn = getattr(self, prefix + step.verb, None)
        if fn is None:
            raise Skipped(f"this runner does not implement {step.kind} '{step.verb}'")
        try:
            inspect.signature(fn).bind(**step.args)
        except TypeError as exc:
            raise Skipped(f"this runner does not understand the arguments of "
                          f"{step.kind} '{step.verb}' ({exc})") from None
        fn(**step.args)

    def feature(self, name: str) -> int:
        bit = names.feature_bit(name, self.device_type)
        if bit is None:
            raise Skipped(f"feature {name} is unknown to this runner")
        return bit

    def offered(self) -> int:
        return self.t.read_device_features()

    def status(self) -> int:
        return self.t.read_status()

    @property
    def swiotlb(self) -> bool:
        return bool(self.negotiated >> F_SWIOTLB & 1)

    def dma(self) -> Bump:
        if self.swiotlb:
            assert self.bounce is not None
            return self.bounce
        return self.ram

    def _write_status(self, value: int) -> None:
        self.driver_status = value
        try:
            self.t.write_status(value)
        except TransportError as exc:
            raise Wedged(f"status write {names.status_text(value)} failed: {exc}") from None

    # ------------------------------------------------------------------ preconditions
    def pre_device(self, type: str) -> None:  # noqa: A002 - the vocabulary's name
        if type not in ("any", self.device_type):
            raise Skipped(f"needs a {type} device; the device under test is {self.device_type}")

    def pre_layout(self, layout: str) -> None:
        if layout not in ("any", self.layout):
            raise Skipped(f"needs the {layout} ring layout; this run uses {self.layout}")

    def pre_offered(self, features: list[str]) -> None:
        offered = self.offered()
        missing = [f for f in features if not offered >> self.feature(f) & 1]
        if missing:
            raise Skipped(f"device does not offer {', '.join(missing)}")

    def pre_transport(self, transport: str) -> None:
        if transport not in ("any", self.s.transport_kind):
            raise Skipped(f"needs the {transport} transport; the device is reached over "
                          f"{self.s.transport_kind}")

    def pre_target(self, side: str) -> None:
        if side == "driver":
            raise Skipped(DRIVER_MODE)

    def pre_region(self, state: str) -> None:
        has_region = self.t.bounce_description() is not None
        if (state == "present") != has_region:
            raise Skipped(f"needs a transport that {'describes' if state == 'present' else 'does not describe'}"
                          f" a bounce-buffer region")

    # ------------------------------------------------------------------ actions
    def act_reset(self) -> None:
        for q in self.queues:
            self.retired.append(q)
        self.queues = []
        self.pending.clear()
        self.driver_status = 0
        self.used_event_pinned = False
        self.framing = ("separate", 64)
        self.readable_log = []
        try:
            self.t.write_status(0)
            deadline = time.monotonic() + self.timeout
            while self.t.read_status() != 0:
                if time.monotonic() > deadline:
                    raise Wedged(f"device status stayed {names.status_text(self.status())} "
                                 f"after a reset", "status 0 after reset")
                time.sleep(0.001)
        except TransportError as exc:
            raise Wedged(f"reset failed: {exc}") from None
        self.negotiated = 0
        self.features_ok_written = False
        self.placement = "default"

    def _begin(self) -> None:
        if self.status() & (ACK | DRIVER) != ACK | DRIVER:
            self._write_status(ACK)
            self._write_status(ACK | DRIVER)

    def act_negotiate(self, features: list[str] | None = None) -> None:
        self._begin()
        offered = self.offered()
        want = 1 << F_VERSION_1
        for f in features or []:
            want |= 1 << self.feature(f)
        if self.layout == PACKED:
            if not offered >> F_RING_PACKED & 1:
                raise Skipped("packed ring layout requested but the device does not offer "
                              "VIRTIO_F_RING_PACKED")
            want |= 1 << F_RING_PACKED
        missing = want & ~offered
        if missing:
            raise Skipped(f"device does not offer {', '.join(names.feature_names(missing))}")
        self.t.write_driver_features(want)
        self.negotiated = want
        self._write_status(ACK | DRIVER | FEATURES_OK)
        self.features_ok_written = True
        if not self.status() & FEATURES_OK:
            self.negotiated = 0
            if not self._next_is("features_ok"):
                raise Skipped(f"device refused the features "
                              f"{', '.join(names.feature_names(want, self.device_type))} at FEATURES_OK")

    _upcoming: list[Step] = []

    def _next_is(self, verb: str) -> bool:
        return bool(self._upcoming) and self._upcoming[0].verb == verb

    def act_accept_raw(self, features: list[str] | None = None) -> None:
        self._begin()
        mask = 0
        for f in features or []:
            mask |= 1 << self.feature(f)
        self.t.write_driver_features(mask)
        self.negotiated = mask

    def act_set_status(self, bits: list[str]) -> None:
        value = self.status() & ~NEEDS_RESET
        for b in bits:
            value |= names.STATUS_BITS[b]
        self._write_status(value)
        if "FEATURES_OK" in bits:
            self.features_ok_written = True
            if not self.status() & FEATURES_OK:
                self.negotiated = 0

    def act_place_rings(self, where: str) -> None:
        if self.region is None:
            raise Skipped("ring placement relative to the bounce region needs a device with one")
        self.placement = where

    def _areas_base(self, where: str, size: int) -> int:
        if where == "inside":
            assert self.bounce is not None
            return self.bounce.alloc(size, 4096)
        return self.ram.alloc(size, 4096)

    def act_setup_queues(self) -> None:
        if not self.status() & FEATURES_OK:
            raise Skipped("queues set up before features were accepted (FEATURES_OK not set)")
        layout = PACKED if self.negotiated >> F_RING_PACKED & 1 else SPLIT
        where = self.placement
        if where == "default":
            where = "inside" if self.swiotlb else "outside_region"
        for q in range(self.t.num_queues()):
            size = min(QUEUE_SIZE, self.t.queue_max_size(q))
            if layout == SPLIT:
                size = 1 << (size.bit_length() - 1)
            self.queues.append(self._setup_queue(q, layout, size, where))
        for b in (self.ram, self.bounce):
            if b is not None:
                self.dma_mark[id(b)] = b.next

    def _setup_queue(self, q: int, layout: str, size: int, where: str,
                     before_enable=None) -> HQueue:
        """Rings for queue ``q`` placed per ``where``, handed to the device and enabled."""
        areas = ring_areas(layout, size)
        addrs = []
        for i, spec in enumerate((areas.desc, areas.driver, areas.device)):
            # straddling: descriptors inside the region, the other areas outside
            here = where if where != "straddling" else ("inside" if i == 0 else "outside")
            addrs.append(self._areas_base(here, spec.size))
        cfg = RingQueueConfig(layout, size, addrs[0], addrs[1], addrs[2],
                              event_idx=bool(self.negotiated >> F_EVENT_IDX & 1),
                              indirect=bool(self.negotiated >> F_INDIRECT & 1),
                              in_order=bool(self.negotiated >> F_IN_ORDER & 1))
        hq = HQueue(self.t.memory, cfg, q)
        try:
            self.t.set_queue(q, QueueConfig(size, cfg.desc, cfg.driver, cfg.device))
            if before_enable is not None:
                before_enable()
            self.t.enable_queue(q)
        except TransportError as exc:
            if self.placement in ("outside_region", "straddling"):
                raise Skipped(f"the transport refused rings outside the region before the "
                              f"device saw them ({exc})") from None
            raise Wedged(f"queue {q} set-up failed: {exc}") from None
        return hq

    def act_driver_ok(self) -> None:
        try:
            self.driver_status = self.status() & ~NEEDS_RESET | DRIVER_OK
            self.t.write_status(self.driver_status)
        except TransportError as exc:
            if self.placement in ("outside_region", "straddling") and self.swiotlb:
                raise Skipped("the front-end cannot give the back-end ring addresses outside "
                              f"the shared bounce region ({exc}); the OS enforces the rule") \
                    from None
            raise Wedged(f"setting DRIVER_OK failed: {exc}") from None

    def _queue(self, index: int = 0) -> HQueue:
        if not self.queues and self.retired:
            # after a reset and before a new set-up: the rings of before the reset
            old = self.retired
            return old[min(index, len(old) - 1)]
        if not self.queues:
            raise Skipped("no queues were set up before a request (vector lacks setup_queues)")
        return self.queues[min(index, len(self.queues) - 1)]

    def _request_queue(self) -> HQueue:
        # virtio-fs: queue 0 is the high-priority queue, requests go to 1
        return self._queue(1 if self.device_type == "fs" else 0)

    # ---- building requests: parts -> segments (framing) -> descriptors
    def _alloc(self, n: int, align: int = 16) -> int:
        dma = self.dma()
        try:
            return dma.alloc(n, align)
        except Skipped:
            pass
        # Full: start again after the rings, stepping over buffers still in flight.
        if not self.pending:
            for q in self.queues:
                q.tables.clear()
        busy = [(a, ln) for p in self.pending.values()
                for a, ln in [(x[0], x[1]) for x in p.readable] + list(p.writable)]
        busy += [(a, len(raw)) for q in self.queues for a, raw in q.tables.items()]
        dma.next = self.dma_mark.get(id(dma), dma.base)
        while True:
            addr = dma.alloc(n, align)          # raises Skipped when truly out of room
            hit = [a + ln for a, ln in busy if addr < a + ln and a < addr + n]
            if not hit:
                return addr
            dma.next = max(hit)

    def _segments(self, parts: list[tuple[str, object]]) -> list[tuple[int, int, bool, bytes]]:
        """(addr, len, writable, initial bytes) per descriptor, by the framing in force."""
        style, chunk = self.framing
        mem = self.t.memory
        groups: list[list[tuple[str, object]]] = []
        for p in parts:
            if style == "merged" and groups and groups[-1][0][0] == p[0]:
                groups[-1].append(p)
            else:
                groups.append([p])
        datas = []
        for g in groups:
            data = b"".join(x[1] if x[0] == "r" else b"\xaa" * x[1] for x in g)
            if g[0][0] == "w" and g[-1] is parts[-1] and self.device_type == "blk":
                data = data[:-1] + b"\xff"    # status byte starts as 0xff: "not written"
            datas.append(data)
        # one block per request, one write: the parts follow each other in it
        block = b"".join(datas)
        base = self._alloc(len(block))
        mem.write(base, block)
        segs = []
        addr = base
        for g, data in zip(groups, datas):
            step = chunk if style == "fragmented" else len(data)
            for off in range(0, len(data), max(step, 1)):
                piece = data[off:off + step]
                segs.append((addr + off, len(piece), g[0][0] == "w", piece))
            addr += len(data)
        return segs

    def _descs(self, q: HQueue, segs, use_indirect: bool | None = None) -> list[Desc]:
        indirect = self.negotiated >> F_INDIRECT & 1 if use_indirect is None else use_indirect
        descs = [Desc(a, n, (DESC_F_WRITE if w else 0) | (DESC_F_NEXT if i + 1 < len(segs) else 0),
                      -1 if i + 1 < len(segs) else 0) for i, (a, n, w, _d) in enumerate(segs)]
        if indirect and len(segs) > 1:
            table = self._alloc(16 * len(segs))
            q.write_table(table, [Desc(d.addr, d.len, d.flags, i + 1 if d.flags & DESC_F_NEXT else 0)
                                  for i, d in enumerate(descs)])
            return [Desc(table, 16 * len(segs), DESC_F_INDIRECT)]
        return descs

    def _offer(self, q: HQueue, descs: list[Desc], segs, pending: Pending,
               publish: bool = True) -> int:
        if pending.kind == "blk":
            self.last_blk = pending
        token = next(self.tokens)
        writable = sum(n for _a, n, w, _d in segs if w)
        q.add_chain(descs, token, writable, publish=publish)
        if publish:
            pending.readable = [(a, n, d) for a, n, w, d in segs if not w]
            pending.writable = [(a, n) for a, n, w, _d in segs if w]
            self.pending[token] = pending
            self.readable_log += pending.readable
        return token

    def _ordinary_parts(self) -> tuple[list[tuple[str, object]], Pending]:
        """blk: read of sector 0 (header, 512-byte buffer, status); rng: 64 bytes."""
        if self.device_type == "blk":
            return ([("r", struct.pack("<IIQ", 0, 0, 0)), ("w", SECTOR), ("w", 1)],
                    Pending("blk", 0, [], sector=0, count=1))
        if self.device_type == "rng":
            return [("w", 64)], Pending("rng", 0, [])
        raise Skipped(f"no ordinary request is defined for a {self.device_type} device")

    def _running(self) -> bool:
        return bool(self.driver_status & DRIVER_OK)

    def _submit(self, q: HQueue, parts, pending: Pending, wait: bool = True,
                kick: bool = True) -> int:
        segs = self._segments(parts)
        token = self._offer(q, self._descs(q, segs), segs, pending)
        if kick and self._running():
            self._kick([q])
            if wait:
                self._wait_token(token)
        return token

    def _kick(self, queues: list[HQueue]) -> None:
        self._drain()
        self.since_kick = []
        self.irqs_since_kick = 0
        for q in queues:
            try:
                self.t.notify(q.index)
            except TransportError as exc:
                if not self.driver_status & DRIVER_OK and self.s.transport_kind == "vhost-user":
                    raise Skipped("a vhost-user front-end starts rings only at DRIVER_OK, so a "
                                  "kick before it cannot reach the back-end") from None
                raise Wedged(f"kick failed: {exc}") from None

    def _drain(self) -> None:
        try:
            irq = self.t.take_interrupts()
        except TransportError as exc:
            raise Wedged(f"device went away: {exc}") from None
        self.irqs_since_kick += sum(irq.queues.values())
        self.config_irqs += irq.config

    def _collect(self) -> list[Completion]:
        got = []
        for q in self.queues:
            for u in q.collect():
                c = Completion(q.index, u.token, u.length)
                got.append(c)
                self._finish(c)
        self.completions += got
        self.since_kick += got
        return got

    def _finish(self, c: Completion) -> None:
        p = self.pending.pop(c.token, None)
        if p is None:
            return
        p.done = True
        p.used_len = c.used_len
        mem = self.t.memory
        for addr, length, data in p.readable:
            if mem.read(addr, length) != data:
                self.readable_corrupted.append(f"{length}-byte device-readable buffer at "
                                               f"{addr:#x}")
        if p.kind == "blk":
            status_addr = p.writable[-1][0] + p.writable[-1][1] - 1
            p.status = mem.read(status_addr, 1)[0]
            self.last_blk_status = p.status
            data = b"".join(mem.read(a, n) for a, n in p.writable)[:-1]
            p.data = data
            if p.count and data:
                self.last_read = (p.sector, data)
            if p.sector == -1:
                self.last_id = data
            if p.sector == -2:
                self.last_lifetime = data
        elif p.kind == "rng":
            n = min(c.used_len, sum(n for _a, n in p.writable))
            p.data = b"".join(self.t.memory.read(a, ln) for a, ln in p.writable)[:n]
            self.last_entropy = p.data

    def _wait_token(self, token: int) -> None:
        deadline = time.monotonic() + self.timeout
        while token in self.pending:
            if self._collect():
                continue
            if self.status() & NEEDS_RESET:
                raise Wedged("device set DEVICE_NEEDS_RESET with a request in flight",
                             "the request completed")
            left = deadline - time.monotonic()
            if left <= 0:
                raise Wedged(f"request not completed within {self.timeout:g} s",
                             "the request completed")
            if not self.used_event_pinned:
                for q in self.queues:
                    q.arm()
                if self._collect():
                    continue
            try:
                irq = self.t.wait_interrupts(min(left, 0.05))
            except TransportError as exc:
                raise Wedged(f"device went away with a request in flight: {exc}") from None
            self.irqs_since_kick += sum(irq.queues.values())
            self.config_irqs += irq.config

    def _blk(self, rtype: int, sector: int, data_out: bytes = b"", data_in: int = 0,
             count: int = 0, marker: int | None = None, wait: bool = True) -> int:
        if self.device_type != "blk":
            raise Skipped(f"block request on a {self.device_type} device")
        q = self._request_queue()
        parts: list[tuple[str, object]] = [("r", struct.pack("<IIQ", rtype, 0, sector))]
        if data_out:
            parts.append(("r", data_out))
        if data_in:
            parts.append(("w", data_in))
        parts.append(("w", 1))
        pending = Pending("blk", q.index, [], sector=sector if marker is None else marker,
                          count=count)
        return self._submit(q, parts, pending, wait)

    def act_blk_write(self, sector: int, count: int, seed: int) -> None:
        data = random.Random(seed).randbytes(count * SECTOR)
        self._blk(1, sector, data_out=data)
        if self.last_blk_status == 0:
            for i in range(count):
                self.written[sector + i] = data[i * SECTOR:(i + 1) * SECTOR]

    def act_blk_read(self, sector: int, count: int) -> None:
        self.last_read = None
        self._blk(0, sector, data_in=count * SECTOR, count=count)

    def act_blk_flush(self) -> None:
        self._blk(4, 0)

    def act_blk_get_id(self) -> None:
        self.last_id = None
        self._blk(8, 0, data_in=ID_LEN, marker=-1)

    def act_blk_request(self, type: int) -> None:  # noqa: A002
        self._blk(type, 0)

    def act_rng_read(self, len: int) -> None:  # noqa: A002
        if self.device_type != "rng":
            raise Skipped(f"entropy request on a {self.device_type} device")
        q = self._request_queue()
        self.last_entropy = None
        self._submit(q, [("w", len)], Pending("rng", q.index, []), wait=False)

    def _expr(self, text: str) -> int:
        if "region." in text and self.region is None:
            raise Skipped("address expression refers to a bounce region the device lacks")
        r = self.region
        values = {"region.start": r.base if r else 0, "region.end": r.end if r else 0,
                  "region.size": r.size if r else 0,
                  "outside": self._outside() if "outside" in text else 0}
        expr = re.sub(r"region\.(start|end|size)|outside",
                      lambda m: str(values[m.group(0)]), text)
        if not re.fullmatch(r"[0-9xXa-fA-F+\-*() ]+", expr):
            raise Skipped(f"cannot evaluate address expression {text!r}")
        return int(eval(expr, {"__builtins__": {}}, {}))  # noqa: S307 - digits and + - * only

    def _outside(self) -> int:
        """Outside the region: with VIRTIO_F_SWIOTLB negotiated, a 4 KiB guest
        RAM buffer filled with a canary; without it, outside all guest memory."""
        if not self.swiotlb:
            top = max(b + n for b, n in self.t.ram_ranges())
            if self.region is not None:
                top = max(top, self.region.end)
            return (top + (1 << 30)) & ~0xFFF
        if self.outside_buf is None:
            self.outside_buf = self.ram.alloc(4096, 4096)
            self.t.memory.write(self.outside_buf, bytes([CANARY]) * 4096)
        return self.outside_buf

    def act_submit_descriptor(self, addr: str, len: int, flags: list | None = None) -> None:  # noqa: A002
        q = self._queue(0)
        address = self._expr(str(addr)) if not isinstance(addr, int) else addr
        bits = 0
        for f in flags or []:
            bits |= DESC_FLAGS[f] if isinstance(f, str) else int(f)
        writable = bool(bits & DESC_F_WRITE)
        seg = (address & (2**64 - 1), len & 0xFFFFFFFF, writable, b"")
        token = next(self.tokens)
        nxt = 0 if not bits & DESC_F_NEXT else (q.next_slot + 1) % q.size
        q.add_chain([Desc(seg[0], seg[1], bits, nxt)], token, seg[1] if writable else 0)
        self.pending[token] = Pending("raw", q.index, [(seg[0], seg[1])] if writable else [])

    def act_framing(self, style: str, chunk: int = 64) -> None:
        if chunk <= 0:
            raise Skipped(f"framing chunk {chunk} is not positive")
        self.framing = (style, chunk)

    def act_negotiate_offered(self) -> None:
        offered = self.offered()
        known = 0
        for bit in names.GENERIC_FEATURES.values():
            known |= 1 << bit
        for bit in names.TYPE_FEATURES.get(self.device_type, {}).values():
            known |= 1 << bit
        unknown = offered & ~known
        if unknown:
            raise Skipped(f"device offers features this runner cannot drive: "
                          f"{', '.join(names.feature_names(unknown, self.device_type))}")
        drivable = offered
        if self.layout != PACKED:
            drivable &= ~(1 << F_RING_PACKED)
        elif not offered >> F_RING_PACKED & 1:
            raise Skipped("packed ring layout requested but the device does not offer "
                          "VIRTIO_F_RING_PACKED")
        self._begin()
        self.t.write_driver_features(drivable)
        self.negotiated = drivable
        self._write_status(ACK | DRIVER | FEATURES_OK)
        self.features_ok_written = True
        if not self.status() & FEATURES_OK and not self._next_is("features_ok"):
            self.negotiated = 0
            raise Skipped("device refused every feature it offered at FEATURES_OK")

    def act_device_io(self, count: int, batch: int = 1) -> None:
        if not self._running():
            raise Skipped("device_io before DRIVER_OK")
        q = self._request_queue()
        self.io = []
        batch = max(1, batch)
        if self.device_type == "blk":
            cap = max(1, self._capacity())
            for start in range(0, count, batch):
                toks = []
                for i in range(start, min(count, start + batch)):
                    data = _sector_data(i)
                    sec = i % cap              # sectors 0, 1, ... wrapping at the capacity
                    self.io_written[sec] = data
                    p = Pending("blk", q.index, [], sector=sec, count=0)
                    p.data = data
                    self.io.append(p)
                    toks.append(self._submit(q, [("r", struct.pack("<IIQ", 1, 0, sec)),
                                                 ("r", data), ("w", 1)], p, kick=False))
                self._kick([q])            # one notification per batch
                self._wait_all(toks)
            for start in range(0, min(count, cap), batch):
                toks = []
                for i in range(start, min(count, cap, start + batch)):
                    p = Pending("blk", q.index, [], sector=i, count=1)
                    self.io.append(p)
                    toks.append(self._submit(q, [("r", struct.pack("<IIQ", 0, 0, i)),
                                                 ("w", SECTOR), ("w", 1)], p, kick=False))
                self._kick([q])
                self._wait_all(toks)
        elif self.device_type == "rng":
            for start in range(0, count, batch):
                toks = []
                for _ in range(start, min(count, start + batch)):
                    p = Pending("rng", q.index, [])
                    self.io.append(p)
                    toks.append(self._submit(q, [("w", 64)], p, kick=False))
                self._kick([q])
                self._wait_all(toks)
        else:
            raise Skipped(f"no ordinary request is defined for a {self.device_type} device")

    def _wait_all(self, tokens: list[int]) -> None:
        for t in tokens:
            self._wait_token(t)

    def act_set_avail_flags(self, value: int) -> None:
        q = self._queue(0)
        if q.packed:
            raise Skipped("set_avail_flags applies to the split layout")
        for hq in self.queues:
            hq.set_avail_flags(value)

    def act_set_used_event(self, ahead: int) -> None:
        self.used_event_pinned = True
        for hq in self.queues:
            if hq.packed:
                raise Skipped("set_used_event applies to the split layout")
            hq.set_used_event(hq.used_idx() + ahead)

    def _config(self, offset: int, size: int) -> bytes:
        """Config bytes, read from offset 0 as a VMM does (some vhost-user
        back-ends ignore the offset of GET_CONFIG)."""
        data = self.t.read_config(0, offset + size)
        return data[offset:offset + size]

    def _capacity(self) -> int:
        try:
            return int.from_bytes(self._config(0, 8), "little")
        except TransportError as exc:
            raise Wedged(f"reading the capacity failed: {exc}") from None

    def act_blk_past_end(self, op: str, where: str) -> None:
        cap = self._capacity()
        sector, count = (cap, 1) if where == "at_end" else (cap - 1, 2)
        if op == "write":
            self._remember_sectors(sector, count)
            data = random.Random(99).randbytes(count * SECTOR)
            self._blk(1, sector, data_out=data)
        else:
            self._blk(0, sector, data_in=count * SECTOR, count=count)

    def _remember_sectors(self, sector: int, count: int) -> None:
        """Read what the sectors hold first (the part inside the disk)."""
        cap = self._capacity()
        inside = max(0, min(count, cap - sector))
        if inside <= 0:
            self.blk_before = (sector, b"")
            return
        self._blk(0, sector, data_in=inside * SECTOR, count=inside)
        self.blk_before = (sector, self.last_read[1] if self.last_read else b"")

    def act_blk_segment_request(self, type: int, seg_flags: int, sector: int = 0,  # noqa: A002
                                num_sectors: int = 1) -> None:
        seg = struct.pack("<QII", sector, num_sectors, seg_flags)
        self._blk(type, 0, data_out=seg)
        if self.last_blk_status == 0:
            for s in range(sector, sector + num_sectors):
                if type == 13:              # WRITE_ZEROES: the sectors now read as zeroes
                    self.written[s] = bytes(SECTOR)
                else:                       # DISCARD, SECURE_ERASE: contents undefined
                    self.written.pop(s, None)

    def act_submit_shape(self, shape: str) -> None:
        q = self._request_queue()
        parts, pending = self._ordinary_parts()
        pending.queue = q.index
        saved = self.framing
        self.framing = ("separate", 64)
        try:
            segs = self._segments(parts)
        finally:
            self.framing = saved
        shapes.submit(self, q, shape, segs, pending)

    def act_kick(self) -> None:
        self._kick(self.queues or self.retired)

    def act_wait_used(self, timeout_ms: int) -> None:
        deadline = time.monotonic() + timeout_ms / 1000
        while True:
            if self._collect() or not self.queues or self.s.synchronous:
                return
            if self.status() & NEEDS_RESET:
                return      # a device that stopped will not return anything more
            left = deadline - time.monotonic()
            if left <= 0:
                return
            try:
                irq = self.t.wait_interrupts(min(left, 0.05))
            except TransportError as exc:
                raise Wedged(f"device went away: {exc}") from None
            self.irqs_since_kick += sum(irq.queues.values())
            self.config_irqs += irq.config

    def act_driver_io(self, count: int) -> None:
        raise Skipped(DRIVER_MODE)

    # ------------------------------------------------------------------ expectations
    def act_backend_resize(self, sectors: int) -> None:
        if self.s.resize is None:
            raise Skipped("this adapter cannot resize the device's backing storage")
        self.s.resize(sectors)

    def act_queue_reset(self) -> None:
        reset = getattr(self.t, "reset_queue", None)
        if reset is None:
            raise Skipped("this transport has no per-queue reset (VIRTIO_F_RING_RESET)")
        q = self._queue(0)
        try:
            reset(q.index)
        except TransportError as exc:
            raise Wedged(f"queue reset failed: {exc}") from None
        self.retired.append(q)
        self.queues = [x for x in self.queues if x is not q]
        self.queue_was_reset = (q.index, q.cfg.layout, q.cfg.size)

    def act_queue_reenable(self, size: int | None = None) -> None:
        """Set the queue reset last up again on fresh rings and enable it.
        Key writes (qenc_keys) between queue_reset and this step land while
        the queue is reset, as the spec asks."""
        if getattr(self, "queue_was_reset", None) is None:
            raise Skipped("queue_reenable without an earlier queue_reset")
        index, layout, old_size = self.queue_was_reset
        self.queue_was_reset = None
        where = self.placement
        if where == "default":
            where = "inside" if self.swiotlb else "outside_region"
        self.queues.insert(0, self._setup_queue(index, layout, size or old_size, where))

    def act_blk_get_lifetime(self) -> None:
        self.last_lifetime = None
        self._blk(10, 0, data_in=6, marker=-2)

    # ------------------------------------------------------------------ health
    def health_check(self) -> str | None:
        """After an invalid input: reset, and see the device work again.
        Returns None when it does, else what went wrong."""
        try:
            return self._health_check()
        except TransportError as exc:
            return f"the device stopped answering: {exc}"
        except Exception as exc:  # noqa: BLE001 - a device must never crash the runner
            return f"unexpected error: {exc!r}"

    def _health_check(self) -> str | None:
        try:
            self.act_reset()
            if self.layout == PACKED and not self.offered() >> F_RING_PACKED & 1:
                self.layout = SPLIT     # the vector ran without rings; any layout will do
            self.act_negotiate([])
        except (Wedged, Failed) as exc:
            return exc.observed
        except Skipped as exc:
            return f"device no longer accepts a plain feature set: {exc.observed}"
        if self.device_type not in ("blk", "rng"):
            return None
        try:
            self.act_setup_queues()
            self.act_driver_ok()
            if self.device_type == "blk":
                self._blk(0, 0, data_in=SECTOR, count=1)
                if self.last_blk_status != 0:
                    return f"a one-sector read after reset ended with status {self.last_blk_status}"
            else:
                self.act_rng_read(16)
                q = self._request_queue()
                self._kick([q])
                self.act_wait_used(int(self.timeout * 1000))
                if not self.since_kick:
                    return "an entropy request after reset was not completed"
        except (Wedged, Failed, Skipped) as exc:
            return exc.observed
        return None
