"""The driver side of one test: its state, and the driver operations verbs share.

``Engine`` is the runner's driver for one test against one ``Session``: a
dataclass whose fields are everything a test remembers between steps (the
rings it set up, buffers in flight, completions, what was read back,
notifications since the last kick). Verbs (``conformance/verbs/``) read and
change these fields and call the operations here (lay out a request,
offer it, kick, collect, wait); the registry (``engine/registry.py``)
maps a vector step to its verb. The runner (``runner.py``) turns what the
verbs raise into verdicts.
"""
from __future__ import annotations

import struct
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator

from device_ref.device_types import DeviceType, QueueSpec, UnknownDeviceType, device_type
from device_ref.ring import ring_areas
from device_ref.ring.layout import QueueConfig as RingQueueConfig
from device_ref.transport import BounceRegion, QueueConfig, TransportError
from device_ref.virtio_constants import (ACKNOWLEDGE, DEVICE_NEEDS_RESET, DRIVER, DRIVER_OK,
                                         F_EVENT_IDX, F_IN_ORDER, F_INDIRECT_DESC, F_SWIOTLB)
from device_ref.virtio_constants import BLK_SECTOR as SECTOR
from device_ref.virtio_constants import (F_VERSION_1, NET_F_HASH_REPORT, NET_F_MRG_RXBUF,
                                         NET_HDR, NET_HDR_HASH, NET_HDR_LEGACY)

from conformance import names, watchdog
from conformance.adapters.base import AdapterError, HostControls, Session
from conformance.conditions import Observations
from conformance.outcomes import Skipped, Wedged
from device_ref.ring.hostile import (DESC_F_INDIRECT, DESC_F_NEXT, DESC_F_WRITE, Desc, HQueue,
                                     RingViolation)
from conformance.vectors import Step

QUEUE_SIZE = 256
# The queue (by its name in the device-type data) an ordinary request goes
# to, where it is not the first queue.
REQUEST_QUEUE = {"fs": "request1", "net": "transmitq1", "console": "transmitq0"}
# An ordinary frame: 60-byte Ethernet broadcast from a locally administered
# address, ethertype 0x88b5 (local experimental), zero payload.
NET_FRAME = b"\xff" * 6 + bytes.fromhex("020000000001") + b"\x88\xb5" + bytes(46)


def net_header_size(features: int) -> int:
    """Bytes of virtio_net_hdr in front of a frame under these features."""
    if features >> NET_F_HASH_REPORT & 1:
        return NET_HDR_HASH
    if features >> F_VERSION_1 & 1 or features >> NET_F_MRG_RXBUF & 1:
        return NET_HDR
    return NET_HDR_LEGACY
CANARY = 0x5A
ACK = ACKNOWLEDGE
NEEDS_RESET = DEVICE_NEEDS_RESET
F_INDIRECT = F_INDIRECT_DESC


# The in-process transport: what is raised below it, the device raised.
DEVICE_BOUNDARY = "device_ref/transport_inproc.py"


def raised_by_device(exc: BaseException) -> bool:
    """Whether ``exc`` came out of device code an in-process transport called
    (below ``transport_inproc``), rather than out of the runner itself."""
    tb = exc.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code.co_filename.endswith(DEVICE_BOUNDARY):
            return True
        tb = tb.tb_next
    return False


def compare(op: str, a: int, b: int) -> bool:
    return {"==": a == b, "!=": a != b, "<": a < b, "<=": a <= b, ">": a > b, ">=": a >= b}[op]


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
    room: int | None = None     # device-writable bytes of the buffer (None: not known)


@dataclass
class Pending:
    kind: str                       # blk, rng, raw, qenc
    queue: int
    writable: list[tuple[int, int]]
    readable: list[tuple[int, int, bytes]] = field(default_factory=list)  # addr, len, data
    sector: int = 0
    count: int = 0
    done: bool = False
    used_len: int | None = None
    status: int | None = None
    data: bytes | None = None


@dataclass(frozen=True)
class NetArrival:
    """One used receive buffer of the network device, in the order of use."""
    used_len: int
    room: int            # its device-writable bytes
    data: bytes          # its bytes after use, up to the used length (or all of it)


@dataclass
class Batch:
    """Requests of one shape offered together (``Engine.submit_batch``):
    request ``i`` lies at ``base + i * stride``, laid out as ``shape``
    (offset, length, writable), and was written as ``data[i * stride:...]``."""

    queue: HQueue
    base: int
    stride: int
    shape: list[tuple[int, int, bool]]
    data: bytes
    tokens: list[int]

    def changed_readable(self, now: bytes) -> list[tuple[int, int]]:
        """(guest address, length) of each device-readable part whose bytes
        in ``now`` (the batch's memory as read back) differ from those written."""
        out = []
        for at in range(0, len(self.data), self.stride):
            for o, n, w in self.shape:
                if not w and now[at + o:at + o + n] != self.data[at + o:at + o + n]:
                    out.append((self.base + at + o, n))
        return out


@dataclass
class Reply:
    """A request of a device-type verb (balloon, scsi, gpu, input) and what came back."""

    what: str                   # e.g. "INQUIRY", "GET_DISPLAY_INFO", "inflate"
    request: bytes              # the device-readable part
    used_len: int | None        # None: never used
    data: bytes                 # the device-writable part as it was left
    extra: dict[str, Any] = field(default_factory=dict)   # what the verb wants to keep


@dataclass
class IoTally:
    """What the last ``device_io`` did, judged batch by batch."""

    requests: int = 0
    problem: tuple[str, str] | None = None      # observed, expected: the first one


@dataclass(slots=True)
class Engine:
    """Driver-side state of one test (every field declared here, nowhere else)."""

    s: Session
    layout: str
    timeout: float
    ram: Bump
    bounce: Bump | None
    region: BounceRegion | None
    device_type: str
    negotiated: int = 0
    placement: str = "default"             # default, inside, outside_region, straddling
    queues: list[HQueue] = field(default_factory=list)
    retired: list[HQueue] = field(default_factory=list)   # set up before the last (queue) reset
    queue_was_reset: tuple[int, str, int] | None = None    # index, layout, size
    driver_status: int = 0
    features_ok_written: bool = False
    framing: tuple[str, int] = ("separate", 64)
    dma_mark: dict[int, int] = field(default_factory=dict)
    used_event_pinned: bool = False        # a vector set used_event: leave it alone
    tokens: Iterator[int] = field(default_factory=lambda: iter(range(1, 1 << 30)))
    pending: dict[int, Pending] = field(default_factory=dict)
    completions: list[Completion] = field(default_factory=list)
    since_kick: list[Completion] = field(default_factory=list)
    irqs_since_kick: int = 0
    # buffers were made available since the last kick: a device that polls its
    # rings may use them, and notify, before the kick (counted from the offer)
    offered_since_kick: bool = False
    config_irqs: int = 0
    readable_log: list[tuple[int, int, bytes]] = field(default_factory=list)
    readable_batches: list[Batch] = field(default_factory=list)    # device_io's, whole
    readable_corrupted: list[str] = field(default_factory=list)
    outside_buf: int | None = None
    offending: list[tuple[int, int]] = field(default_factory=list)  # hostile buffers: token, queue
    kind: DeviceType | None = None          # device-type data (None: a type the data lacks)
    # block device
    last_blk: Pending | None = None
    last_blk_status: int | None = None
    last_read: tuple[int, bytes] | None = None
    last_id: bytes | None = None
    last_lifetime: bytes | None = None
    written: dict[int, bytes] = field(default_factory=dict)   # sector -> data written
    blk_before: tuple[int, bytes] | None = None
    # entropy device
    last_entropy: bytes | None = None
    # balloon, scsi, gpu, input (verbs/balloon.py, scsi.py, gpu.py, input.py):
    # their requests in order, and the pages the driver gave the balloon
    replies: list[Reply] = field(default_factory=list)
    balloon_pfns: list[int] = field(default_factory=list)
    # network device (verbs/net.py): frames sent, receive buffers used
    net_sent: list[bytes] = field(default_factory=list)
    net_arrivals: list[NetArrival] = field(default_factory=list)
    # device_io
    io: IoTally | None = None
    io_written: dict[int, bytes] = field(default_factory=dict)
    io_restarted_at: int | None = None     # the request device_io resumed at after a restart
    # queue encryption (verbs/qenc.py)
    qenc: Any = None
    # steps still to come (some verbs look one step ahead)
    upcoming: tuple[Step, ...] = ()
    # what the device was seen doing (for conditional verdicts)
    seen_needs_reset: bool = False
    # transport registers by name, as reg_read last saw them (verbs/transport.py)
    registers: dict[str, int] = field(default_factory=dict)
    # what an expectation that held learned on the way (said in a REJECT's reason)
    remarks: list[str] = field(default_factory=list)

    @classmethod
    def start(cls, session: Session, layout: str, step_timeout: float = 2.0) -> "Engine":
        t = session.transport
        base, size = max(t.ram_ranges(), key=lambda r: r[1])
        region = session.bounce
        try:
            kind: DeviceType | None = device_type(session.device_type)
        except UnknownDeviceType:
            kind = None
        return cls(s=session, layout=layout, timeout=step_timeout, ram=Bump(base, size),
                   bounce=Bump(region.base, region.size) if region else None, region=region,
                   device_type=session.device_type, kind=kind)

    @property
    def t(self):
        return self.s.transport

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

    def write_status(self, value: int) -> None:
        self.driver_status = value
        try:
            self.t.write_status(value)
        except TransportError as exc:
            raise Wedged(f"status write {names.status_text(value)} failed: {exc}") from None

    def begin(self) -> None:
        if self.status() & (ACK | DRIVER) != ACK | DRIVER:
            self.write_status(ACK)
            self.write_status(ACK | DRIVER)

    def areas_base(self, where: str, size: int) -> int:
        if where == "inside":
            assert self.bounce is not None
            return self.bounce.alloc(size, 4096)
        return self.ram.alloc(size, 4096)

    def setup_queue(self, q: int, layout: str, size: int, where: str,
                     before_enable=None) -> HQueue:
        """Rings for queue ``q`` placed per ``where``, handed to the device and enabled."""
        areas = ring_areas(layout, size)
        addrs = []
        legacy = self.t.legacy_ring_align()
        if legacy and where != "straddling":
            # legacy MMIO: one block, the used ring at the next boundary
            used = -(-(areas.desc.size + areas.driver.size) // legacy) * legacy
            base = self.areas_base(where, used + areas.device.size)
            addrs = [base, base + areas.desc.size, base + used]
        for i, spec in enumerate((areas.desc, areas.driver, areas.device) if not addrs else ()):
            # straddling: descriptors inside the region, the other areas outside
            here = where if where != "straddling" else ("inside" if i == 0 else "outside")
            addrs.append(self.areas_base(here, spec.size))
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

    def queue(self, index: int = 0) -> HQueue:
        if not self.queues and self.retired:
            # after a reset and before a new set-up: the rings of before the reset
            old = self.retired
            return old[min(index, len(old) - 1)]
        if not self.queues:
            raise Skipped("no queues were set up before a request (vector lacks setup_queues)")
        here = next((q for q in self.queues if q.index == index), None)
        if here is None:
            # a queue reset alone (net's transmitq1) and not set up again: its old rings
            here = next((q for q in reversed(self.retired) if q.index == index), None)
        return here if here is not None else self.queues[min(index, len(self.queues) - 1)]

    def queue_specs(self) -> list[QueueSpec] | None:
        """The queues this device type has under the negotiated features (the
        count fields read from config space), or None for a type the data lacks."""
        if self.kind is None:
            return None
        config = {}
        for f in self.kind.count_fields(self.negotiated):
            try:
                config[f.name] = int.from_bytes(self.config(f.offset, f.size), "little")
            except (TransportError, OSError):
                pass        # the smallest count the spec allows
        return self.kind.queues(self.negotiated, config)

    def queue_count(self) -> int:
        """Queues to set up: what the type and features call for, never more
        than the transport has (not a back-end's GET_QUEUE_NUM of 128)."""
        specs = self.queue_specs()
        n = self.t.num_queues()
        return n if specs is None else min(n, len(specs))

    def queue_name(self, index: int) -> str:
        specs = self.queue_specs() or []
        return next((f"{q.name} (queue {index})" for q in specs if q.index == index),
                    f"queue {index}")

    def queue_spec(self, index: int) -> QueueSpec | None:
        """The device-type data's description of queue ``index`` (None: not known)."""
        return next((q for q in self.queue_specs() or [] if q.index == index), None)

    def hostile_queue(self) -> HQueue:
        """Where a hostile descriptor goes: the first queue whose buffers the
        device takes without an outside event (net: transmitq1, never a
        receive queue that only an arriving packet would touch)."""
        specs = self.queue_specs()
        if specs is None:
            return self.request_queue()
        spec = next((q for q in specs if q.unprompted), None)
        if spec is None:
            raise Skipped(f"no queue of a {self.device_type} device takes buffers without an "
                          f"outside event, so a hostile buffer would never be looked at")
        return self.queue(spec.index)

    def request_queue(self) -> HQueue:
        """Where ordinary requests go: queue 0, but virtio-fs's request1 (0
        is its high-priority queue) and net's transmitq1 (frames to send)."""
        name = REQUEST_QUEUE.get(self.device_type)
        spec = self.kind.queue_by_name(name, self.negotiated) \
            if name is not None and self.kind is not None else None
        return self.queue(spec.index if spec is not None else 0)

    def host(self) -> HostControls:
        """The adapter's outside events (SKIP when it has none)."""
        if self.s.host is None:
            raise Skipped("this adapter cannot cause outside events (a new balloon target, "
                          "the statistics interval, an input event)")
        return self.s.host

    def via_host(self, what: str, call: Callable[[HostControls], Any]) -> Any:
        """``call`` on the host controls; a refusal SKIPs the test ("what
        could not be done"): the machine, not the device, said no."""
        try:
            return call(self.host())
        except AdapterError as exc:
            raise Skipped(f"{what} could not be done: {exc}") from None

    def named_queue(self, name: str) -> HQueue:
        """The queue the device-type data calls ``name`` under the negotiated
        features (SKIP when the type has no such queue now, or it was not set up)."""
        spec = self.kind.queue_by_name(name, self.negotiated) if self.kind is not None else None
        if spec is None:
            raise Skipped(f"a {self.device_type} device has no {name} under the negotiated "
                          f"features ({', '.join(names.feature_names(self.negotiated, self.device_type)) or 'none'})")
        q = next((x for x in self.queues if x.index == spec.index), None)
        if q is None:
            raise Skipped(f"{name} (queue {spec.index}) was not set up")
        return q

    def alloc(self, n: int, align: int = 16) -> int:
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
        # what was read from the memory given out again no longer has to
        # stay: keep the buffers still in flight and those below the mark
        live = {a for p in self.pending.values() for a, _n, _d in p.readable}
        self.readable_log = [x for x in self.readable_log if x[0] < dma.next or x[0] in live
                             or x[0] >= dma.base + dma.size]
        self.readable_batches = [b for b in self.readable_batches
                                 if not dma.next <= b.base < dma.base + dma.size]
        while True:
            addr = dma.alloc(n, align)          # raises Skipped when truly out of room
            hit = [a + ln for a, ln in busy if addr < a + ln and a < addr + n]
            if not hit:
                return addr
            dma.next = max(hit)

    def lay_out(self, parts: list[tuple[str, object]]) -> tuple[bytes, list[tuple[int, int, bool]]]:
        """A request's bytes as laid out in one block (device-readable parts
        as given, device-writable ones filled), and its descriptors as
        (offset in the block, length, writable), by the framing in force."""
        style, chunk = self.framing
        groups: list[list[tuple[str, object]]] = []
        for p in parts:
            if style == "merged" and groups and groups[-1][0][0] == p[0]:
                groups[-1].append(p)
            else:
                groups.append([p])
        block = self.request_bytes(parts)
        shape = []
        off = 0
        for g in groups:
            size = sum(len(x[1]) if x[0] == "r" else x[1] for x in g)
            step = max(chunk if style == "fragmented" else size, 1)
            shape += [(off + o, min(step, size - o), g[0][0] == "w") for o in range(0, size, step)]
            off += size
        return block, shape

    def request_bytes(self, parts: list[tuple[str, object]]) -> bytes:
        """The parts one after another: device-readable ones as given,
        device-writable ones filled with 0xaa (a blk status byte with 0xff,
        "not written")."""
        block = b"".join(x[1] if x[0] == "r" else b"\xaa" * x[1] for x in parts)
        if parts and parts[-1][0] == "w" and self.device_type == "blk":
            block = block[:-1] + b"\xff"
        return block

    def segments(self, parts: list[tuple[str, object]]) -> list[tuple[int, int, bool, bytes]]:
        """(addr, len, writable, initial bytes) per descriptor, by the framing in force."""
        block, shape = self.lay_out(parts)
        # one block per request, one write: the parts follow each other in it
        base = self.alloc(len(block))
        self.t.memory.write(base, block)
        return [(base + o, n, w, block[o:o + n]) for o, n, w in shape]

    def submit_batch(self, q: HQueue, requests: list[list[tuple[str, object]]]) -> "Batch":
        """Offer requests of one shape (their parts' kinds and lengths alike)
        without a kick: one block of guest memory for all of them and, on a
        split ring without indirect descriptors, one ring write. No
        ``Pending`` is kept: the caller judges the batch as a whole."""
        blocks = [self.request_bytes(parts) for parts in requests]
        _, shape = self.lay_out(requests[0])
        stride = len(blocks[0])
        data = b"".join(blocks)
        base = self.alloc(len(data))
        self.t.memory.write(base, data)
        writable = sum(n for _o, n, w in shape if w)
        self.making_available()
        tokens = [next(self.tokens) for _ in blocks]
        if not q.packed and not (self.negotiated >> F_INDIRECT & 1 and len(shape) > 1):
            q.add_uniform(base, stride, [(o, n, DESC_F_WRITE if w else 0) for o, n, w in shape],
                          tokens, writable)
        else:
            for i, (token, block) in enumerate(zip(tokens, blocks)):
                at = base + i * stride
                segs = [(at + o, n, w, block[o:o + n]) for o, n, w in shape]
                q.add_chain(self.descs(q, segs), token, writable)
        batch = Batch(q, base, stride, shape, data, tokens)
        self.readable_batches.append(batch)      # its device-readable parts, as readable_log
        return batch

    def descs(self, q: HQueue, segs, use_indirect: bool | None = None) -> list[Desc]:
        indirect = self.negotiated >> F_INDIRECT & 1 if use_indirect is None else use_indirect
        descs = [Desc(a, n, (DESC_F_WRITE if w else 0) | (DESC_F_NEXT if i + 1 < len(segs) else 0),
                      -1 if i + 1 < len(segs) else 0) for i, (a, n, w, _d) in enumerate(segs)]
        if indirect and len(segs) > 1:
            table = self.alloc(16 * len(segs))
            q.write_table(table, [Desc(d.addr, d.len, d.flags, i + 1 if d.flags & DESC_F_NEXT else 0)
                                  for i, d in enumerate(descs)])
            return [Desc(table, 16 * len(segs), DESC_F_INDIRECT)]
        return descs

    def offer(self, q: HQueue, descs: list[Desc], segs, pending: Pending,
               publish: bool = True) -> int:
        if pending.kind == "blk":
            self.last_blk = pending
        token = next(self.tokens)
        writable = sum(n for _a, n, w, _d in segs if w)
        if publish:
            self.making_available()
        q.add_chain(descs, token, writable, publish=publish)
        if publish:
            pending.readable = [(a, n, d) for a, n, w, d in segs if not w]
            pending.writable = [(a, n) for a, n, w, _d in segs if w]
            self.pending[token] = pending
            self.readable_log += pending.readable
        return token

    def ordinary_parts(self) -> tuple[list[tuple[str, object]], Pending]:
        """blk: read of sector 0 (header, 512-byte buffer, status); rng: 64
        bytes; net: one frame to send (a zeroed virtio_net_hdr, no offloads,
        then a 60-byte broadcast frame), both device-readable; console: 16
        bytes of text written to port 0."""
        if self.device_type == "blk":
            return ([("r", struct.pack("<IIQ", 0, 0, 0)), ("w", SECTOR), ("w", 1)],
                    Pending("blk", 0, [], sector=0, count=1))
        if self.device_type == "rng":
            return [("w", 64)], Pending("rng", 0, [])
        if self.device_type == "net":
            return ([("r", bytes(net_header_size(self.negotiated))), ("r", NET_FRAME)],
                    Pending("net", self.request_queue().index, []))
        if self.device_type == "console":
            return [("r", b"virtio console\r\n")], Pending("console", self.request_queue().index,
                                                          [])
        raise Skipped(f"no ordinary request is defined for a {self.device_type} device")

    def request(self, q: HQueue, what: str, readable: bytes | list[bytes],
                writable: int | list[int] = 0, wait: bool = True) -> Reply:
        """One request of a device-type verb on ``q``: the parts the device
        reads (one descriptor each under the default framing), then the sizes
        of the parts it may write; offered, notified and (with ``wait``)
        waited for. The reply is logged in ``replies``; ``finish_reply``
        fills it in if it completes later."""
        reads = [readable] if isinstance(readable, bytes) else readable
        writes = [writable] if isinstance(writable, int) else writable
        parts: list[tuple[str, object]] = [("r", r) for r in reads if r]
        parts += [("w", n) for n in writes if n]
        pending = Pending("reply", q.index, [])
        reply = Reply(what, b"".join(reads), None, b"")
        reply.extra["pending"] = pending
        self.replies.append(reply)
        if wait and not self.running():
            raise Skipped(f"{what}: a request to wait for before DRIVER_OK (the vector lacks "
                          f"driver_ok)")
        self.submit(q, parts, pending, wait=wait)
        self.finish_reply(reply)
        return reply

    def finish_reply(self, reply: Reply) -> None:
        """Copy what the device returned into ``reply`` once it was used."""
        pending = reply.extra.get("pending")
        if pending is not None and pending.done:
            reply.used_len, reply.data = pending.used_len, pending.data or b""

    def running(self) -> bool:
        return bool(self.driver_status & DRIVER_OK)

    def run_until(self, done, timeout: float | None = None) -> bool:
        """Let the device work, collecting what it uses, until ``done()``
        holds (True) or ``timeout`` seconds, by default the step timeout,
        have passed (False): a wait whose end is judged by the caller."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while True:
            self.collect()
            if done():
                return True
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            self.wait_interrupts(min(left, 0.05))

    def need_type(self, device_type: str, what: str) -> None:
        """A device-type verb on another type of device SKIPs, naming ``what`` it is."""
        if self.device_type != device_type:
            raise Skipped(f"{what} on a {self.device_type} device")

    def submit(self, q: HQueue, parts, pending: Pending, wait: bool = True,
                kick: bool = True) -> int:
        segs = self.segments(parts)
        token = self.offer(q, self.descs(q, segs), segs, pending)
        if kick and self.running():
            self.kick([q])
            if wait:
                self.wait_token(token)
        return token

    def making_available(self) -> None:
        """Called before a buffer is published: what the device does from here
        on counts as "since the kick" (a polling device need not wait for it)."""
        if not self.offered_since_kick:
            self.drain()
            self.since_kick = []
            self.irqs_since_kick = 0
            self.offered_since_kick = True

    def kick(self, queues: list[HQueue]) -> None:
        self.drain()
        if not self.offered_since_kick:
            self.since_kick = []
            self.irqs_since_kick = 0
        self.offered_since_kick = False
        for q in queues:
            try:
                self.t.notify(q.index)
            except TransportError as exc:
                if not self.driver_status & DRIVER_OK and self.s.transport_kind == "vhost-user":
                    raise Skipped("a vhost-user front-end starts rings only at DRIVER_OK, so a "
                                  "kick before it cannot reach the back-end") from None
                raise Wedged(f"kick failed: {exc}") from None

    def forget_before_reset(self, queues: list[HQueue]) -> None:
        """After a device or queue reset completed: what the device used or
        notified before it (a polling device needs no kick) is no request
        carried out after the reset; only what appears later counts."""
        for q in queues:
            try:
                q.collect()
            except RingViolation:
                pass    # expect no_used reports a ring gone wrong, when asked
        self.drain()
        self.since_kick, self.irqs_since_kick, self.offered_since_kick = [], 0, False

    def drain(self) -> None:
        try:
            irq = self.t.take_interrupts()
        except TransportError as exc:
            raise Wedged(f"device went away: {exc}") from None
        self.irqs_since_kick += sum(irq.queues.values())
        self.config_irqs += irq.config

    def collect(self) -> list[Completion]:
        got = []
        for q in self.queues:
            for u in q.collect():
                p = self.pending.get(u.token)
                if p is None:
                    got.append(Completion(q.index, u.token, u.length))
                    continue
                c = Completion(q.index, u.token, u.length, sum(n for _a, n in p.writable))
                got.append(c)
                self.finish(c)
        self.completions += got
        self.since_kick += got
        if got:
            watchdog.progress()
        return got

    def finish(self, c: Completion) -> None:
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
            whole = b"".join(mem.read(a, n) for a, n in p.writable)
            p.status = whole[-1]       # the last writable byte
            self.last_blk_status = p.status
            data = p.data = whole[:-1]
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
        elif p.kind == "reply":
            p.data = b"".join(mem.read(a, n) for a, n in p.writable)
        elif p.kind == "net_rx":
            room = sum(n for _a, n in p.writable)
            data = b"".join(mem.read(a, ln) for a, ln in p.writable)[:min(c.used_len, room)]
            self.net_arrivals.append(NetArrival(c.used_len, room, data))

    def wait_token(self, token: int) -> None:
        self.wait_while(lambda: token in self.pending)

    def wait_batch(self, batch: "Batch") -> None:
        """Wait until the device has used every request of ``batch``."""
        tokens = set(batch.tokens)
        self.wait_while(lambda: any(b.token in tokens for b in batch.queue.inflight.values()))

    def wait_while(self, busy) -> None:
        """Collect, and wait for notifications, while ``busy()``: a request
        the device set NEEDS_RESET over or did not use within the step
        timeout is WEDGED."""
        deadline = time.monotonic() + self.timeout
        while busy():
            if self.collect():
                continue
            if self.needs_reset():
                raise Wedged("device set DEVICE_NEEDS_RESET with a request in flight",
                             "the request completed")
            left = deadline - time.monotonic()
            if left <= 0:
                raise Wedged(f"request not completed within {self.timeout:g} s",
                             "the request completed")
            if not self.used_event_pinned:
                for q in self.queues:
                    q.arm()
                if self.collect():
                    continue
            try:
                irq = self.t.wait_interrupts(min(left, 0.05))
            except TransportError as exc:
                raise Wedged(f"device went away with a request in flight: {exc}") from None
            self.irqs_since_kick += sum(irq.queues.values())
            self.config_irqs += irq.config

    def wait_all(self, tokens: list[int]) -> None:
        for t in tokens:
            self.wait_token(t)

    def config(self, offset: int, size: int) -> bytes:
        """Config bytes, read from offset 0 as a VMM does (some vhost-user
        back-ends ignore the offset of GET_CONFIG)."""
        data = self.t.read_config(0, offset + size)
        return data[offset:offset + size]

    def next_is(self, verb: str) -> bool:
        return bool(self.upcoming) and self.upcoming[0].verb == verb

    def outside(self) -> int:
        """Outside the region: with VIRTIO_F_SWIOTLB negotiated, a 4 KiB guest
        RAM buffer filled with a canary; without it, outside all guest memory."""
        if not self.swiotlb:
            if self.s.bus_reaches_everything:
                raise Skipped("outside guest RAM is still a bus address here: the platform "
                              "drops the access and the device cannot tell it from RAM")
            top = max(b + n for b, n in self.t.ram_ranges())
            if self.region is not None:
                top = max(top, self.region.end)
            return (top + (1 << 30)) & ~0xFFF
        if self.outside_buf is None:
            self.outside_buf = self.ram.alloc(4096, 4096)
            self.t.memory.write(self.outside_buf, bytes([CANARY]) * 4096)
        return self.outside_buf

    def offending_used(self, token: int) -> bool:
        """Whether the device has used the hostile buffer ``token``."""
        return token not in self.pending

    def try_later_buffer(self, index: int) -> tuple[bool | None, str]:
        """Make one ordinary request available on queue ``index`` and wait the
        step timeout for it: (True, what) used; (False, what) never used, or
        the device set DEVICE_NEEDS_RESET meanwhile; (None, why) none could be
        tried (the type has no ordinary request, or it goes on another queue)."""
        try:
            parts, pending = self.ordinary_parts()
        except Skipped as exc:
            return None, exc.observed
        q = next((x for x in self.queues if x.index == index), None)
        if q is None or pending.queue != index:
            return None, (f"the ordinary {self.device_type} request goes on "
                          f"{self.queue_name(pending.queue)}, not on {self.queue_name(index)}")
        token = self.submit(q, parts, pending, wait=False)
        deadline = time.monotonic() + self.timeout
        while token in self.pending and not self.needs_reset():
            left = deadline - time.monotonic()
            if left <= 0:
                return False, f"later buffer never used (waited {self.timeout:g} s)"
            if not self.collect():
                self.wait_interrupts(min(left, 0.05))
        if token in self.pending:
            return False, "later buffer never used (the device set DEVICE_NEEDS_RESET)"
        return True, "a later ordinary buffer on it was used"

    def needs_reset(self) -> bool:
        """Whether the device has set DEVICE_NEEDS_RESET (remembered for the verdict)."""
        if self.status() & NEEDS_RESET:
            self.seen_needs_reset = True
            return True
        return False

    def wait_interrupts(self, seconds: float) -> None:
        """Wait up to ``seconds`` for interrupts and count them."""
        try:
            irq = self.t.wait_interrupts(seconds)
        except TransportError as exc:
            raise Wedged(f"device went away: {exc}") from None
        self.irqs_since_kick += sum(irq.queues.values())
        self.config_irqs += irq.config

    def observations(self) -> Observations:
        """What this test saw, for the requirement's condition (never raises)."""
        try:
            offered: int | None = self.offered()
            if self.status() & NEEDS_RESET:
                self.seen_needs_reset = True
        except (TransportError, OSError):
            offered = None
        return Observations(self.device_type, self.negotiated, offered, self.driver_status,
                            self.seen_needs_reset)
