"""The reference virtio driver: negotiation, queues, requests, and distrust.

It is handed a ``DriverTransport`` and nothing else. It negotiates features
(accepting VIRTIO_F_SWIOTLB whenever offered), lays its rings out with the
ring core's driver side (split or packed, with INDIRECT_DESC, EVENT_IDX and
IN_ORDER when negotiated), submits requests and collects completions.

With VIRTIO_F_SWIOTLB negotiated every address the driver gives the device
(rings, indirect tables, buffers) comes from a ``BouncePool`` inside the
device's bounce region, and data is copied in and out; without it, the
driver uses ordinary guest RAM, and caller-owned ``GuestBuffer``s are
handed to the device as they are (no copy).

A device is not trusted. Anything it does wrong (a used id never made
available, a used length beyond the buffer, a used index jump, a wrong
packed wrap counter, a notification storm, a configuration generation that
never settles, DEVICE_NEEDS_RESET, silence past the timeout) ends in a
specific ``DeviceError``. Before raising it the driver resets the device, so
the device no longer owns any buffer, and only then fails the requests in
flight and frees their memory: a buffer is never handed back while the
device may still write it. If even the reset fails, the driver keeps every
buffer allocated (state ``dead``) rather than risk reuse.
"""
from __future__ import annotations

import itertools
import time
from contextlib import contextmanager
from dataclasses import dataclass, field

from device_ref.device.features import (ACKNOWLEDGE, DEVICE_NEEDS_RESET, DRIVER, DRIVER_OK,
                                        F_EVENT_IDX, F_IN_ORDER, F_INDIRECT_DESC, F_RING_PACKED,
                                        F_RING_RESET, F_SWIOTLB, F_VERSION_1, FAILED, FEATURES_OK, bit, has)
from device_ref.driver.errors import (BY_RING_CODE, ConfigUnstable, DeviceError, DeviceNeedsReset,
                                      DriverError, DriverNotReady, NegotiationFailed,
                                      NotificationStorm, RequestTimeout, RingBroken)
from device_ref.ring import DriverQueue, PACKED, SPLIT, RingError, RingErrorCode, ring_areas
from device_ref.ring.layout import QueueConfig as RingQueueConfig
from device_ref.swiotlb import Allocation, BouncePool, PoolError, PoolExhausted, SlotAllocator
from device_ref.transport import DriverTransport, QueueConfig, TransportError
from device_ref.driver.guest_buffer import GuestBuffer
from device_ref.ring.hostile import RawPacked, RawSplit
from device_ref.driver.stream import Stream

GENERIC_FEATURES = (bit(F_VERSION_1) | bit(F_INDIRECT_DESC) | bit(F_EVENT_IDX)
                    | bit(F_RING_PACKED) | bit(F_IN_ORDER) | bit(F_RING_RESET) | bit(F_SWIOTLB))
ALL = (1 << 128) - 1
SMALL = 256   # parts up to this size share one allocation per request


def _pad(n: int) -> int:
    return (n + 7) & ~7


@dataclass
class DriverOptions:
    features: int = ALL          # mask of features the driver is willing to accept
    queue_size: int = 128
    timeout: float = 2.0         # seconds a request may take
    storm_limit: int = 256       # interrupts without progress before giving up
    config_retries: int = 32     # generation re-reads before ConfigUnstable
    use_indirect: bool = True    # when negotiated, chains of 2+ segments go indirect
    pool_wait: float = 0.0       # seconds to wait for bounce/DMA memory when full


@dataclass
class Request:
    queue: int
    token: int
    allocs: list[Allocation]
    copy_back: list[tuple[int, int, GuestBuffer | None]]   # driver address, length, caller buffer
    writable_len: int
    done: bool = False
    used_len: int | None = None
    data: bytes | None = None        # bytes of the driver-allocated writable parts
    error: DriverError | None = None
    layer_ctx: object = None         # what the buffer layer needs at completion


@dataclass
class _Queue:
    ring: DriverQueue
    config: RingQueueConfig
    allocs: list[Allocation]
    inflight: dict[int, Request] = field(default_factory=dict)
    used: bool = False    # the safe layer has made buffers available here
    owner: str | None = None   # "raw layer" or "stream": the safe layer stays out


@dataclass
class Counters:
    kicks: int = 0
    queue_interrupts: int = 0
    config_interrupts: int = 0
    completions: int = 0
    resets: int = 0


class VirtioDriver:
    DEVICE_FEATURES = 0   # device-type feature bits this driver understands
    DEVICE_ID: int | None = None

    def __init__(self, transport: DriverTransport, options: DriverOptions | None = None) -> None:
        self.t = transport
        self.opts = options or DriverOptions()
        ram = transport.ram_ranges()
        if not ram:
            raise DriverError("transport offers no guest RAM")
        base, size = max(ram, key=lambda r: r[1])
        self.ram = SlotAllocator(base, size)
        self.dma: SlotAllocator = self.ram
        self.queues: list[_Queue] = []
        self.state = "new"
        self.negotiated = 0
        self.offered = 0
        self.layout = SPLIT
        self.last_error: DriverError | None = None
        self.counters = Counters()
        self.status_log: list[int] = []
        self._tokens = itertools.count(1)
        self._generation = None
        self._held: set[int] | None = None     # queues to kick at the end of kicks_held
        # An optional buffer-protection layer (device_ref.qenc): it installs
        # keys before DRIVER_OK, seals each request and opens each completion.
        self.buffer_layer = None
        register = getattr(transport, "register_driver", None)
        if register is not None:
            register(self)

    # -- properties ------------------------------------------------------
    @property
    def swiotlb(self) -> bool:
        return has(self.negotiated, F_SWIOTLB)

    def supported(self) -> int:
        layer = self.buffer_layer.features if self.buffer_layer is not None else 0
        return GENERIC_FEATURES | self.DEVICE_FEATURES | layer

    # -- status helpers ----------------------------------------------------
    def _status(self, value: int) -> None:
        self.status_log.append(value)
        self.t.write_status(value)

    def read_status(self) -> int:
        return self.t.read_status()

    # -- initialisation ----------------------------------------------------
    def init(self) -> "VirtioDriver":
        """Reset the device and bring it to DRIVER_OK (spec initialisation order)."""
        if self.state == "dead":
            raise DriverNotReady("device could not be reset earlier; driver holds its buffers")
        if self.state == "closed":
            raise DriverNotReady("the transport was closed")
        if self.queues:
            self._teardown(None)
        t = self.t
        self.state = "init"
        try:
            t.reset()
            if self.DEVICE_ID is not None and t.device_id() != self.DEVICE_ID:
                raise DriverError(f"device id {t.device_id()} is not {self.DEVICE_ID}")
            self._status(ACKNOWLEDGE)
            self._status(ACKNOWLEDGE | DRIVER)
            self.offered = t.read_device_features()
            want = self.offered & self.supported() & self.opts.features
            t.write_driver_features(want)
            self._status(ACKNOWLEDGE | DRIVER | FEATURES_OK)
            if not t.read_status() & FEATURES_OK:
                self._status(ACKNOWLEDGE | DRIVER | FAILED)
                self.state = "failed"
                raise NegotiationFailed(f"device refused features {want:#x} (offered {self.offered:#x})")
            self.negotiated = want
            self.layout = PACKED if has(want, F_RING_PACKED) else SPLIT
            self._choose_memory()
            self.device_setup()
            for q in range(self.num_queues()):
                self.queues.append(self._setup_queue(q))
            if self.buffer_layer is not None:
                self.buffer_layer.install(self)
            self._status(ACKNOWLEDGE | DRIVER | FEATURES_OK | DRIVER_OK)
            if t.read_status() & DEVICE_NEEDS_RESET:
                raise DeviceNeedsReset("device set DEVICE_NEEDS_RESET during initialisation")
        except DeviceError as exc:
            self._fail(exc)
        except (TransportError, RingError, PoolError) as exc:
            try:
                t.write_status(t.read_status() | FAILED)
            except TransportError:
                pass
            self._release_queues()
            self.state = "failed"
            raise DriverError(f"initialisation failed: {exc}") from exc
        self.state = "ready"
        return self

    def num_queues(self) -> int:
        return self.t.num_queues()

    def device_setup(self) -> None:
        """Device-specific setup between FEATURES_OK and DRIVER_OK (read config...)."""

    def _choose_memory(self) -> None:
        if not self.swiotlb:
            self.dma = self.ram
            return
        desc = self.t.bounce_description()
        if desc is None:
            raise TransportError("VIRTIO_F_SWIOTLB negotiated but the transport describes no bounce region")
        region = desc.region()
        if not self.t.memory.contains(region.base, region.size):
            raise TransportError(f"bounce region {region.base:#x}+{region.size:#x} is not mapped")
        self.dma = BouncePool(region, self.t.memory)

    def _setup_queue(self, q: int, enable: bool = True) -> _Queue:
        size = min(self.opts.queue_size, self.t.queue_max_size(q))
        if self.layout == SPLIT:
            size = 1 << (size.bit_length() - 1)  # split rings need a power of two
        areas = ring_areas(self.layout, size)
        allocs = []
        legacy = self.t.legacy_ring_align()
        try:
            if legacy and self.layout == SPLIT:
                # one block: descriptors, available ring, used ring at the next boundary
                used = -(-(areas.desc.size + areas.driver.size) // legacy) * legacy
                block = self.dma.alloc(used + areas.device.size, legacy)
                allocs.append(block)
                addrs = (block.addr, block.addr + areas.desc.size, block.addr + used)
            else:
                for spec in (areas.desc, areas.driver, areas.device):
                    allocs.append(self.dma.alloc(spec.size, spec.align))
                addrs = tuple(a.addr for a in allocs)
        except PoolError:
            for a in allocs:
                self.dma.free(a)
            raise
        cfg = RingQueueConfig(self.layout, size, addrs[0], addrs[1], addrs[2],
                              event_idx=has(self.negotiated, F_EVENT_IDX),
                              indirect=has(self.negotiated, F_INDIRECT_DESC),
                              in_order=has(self.negotiated, F_IN_ORDER))
        ring = DriverQueue(self.t.memory, cfg)
        self.t.set_queue(q, QueueConfig(size, cfg.desc, cfg.driver, cfg.device))
        if enable:
            self.t.enable_queue(q)
        return _Queue(ring, cfg, allocs)

    def reset_queue(self, queue: int) -> None:
        """Reset one queue alone (VIRTIO_F_RING_RESET) and set it up again on
        fresh rings; with a buffer layer, a fresh key goes in before the
        queue is enabled again. Requests in flight on the queue fail with
        ``DriverNotReady`` (the device never uses them); other queues go on."""
        self._require_ready()
        if not has(self.negotiated, F_RING_RESET):
            raise DriverError("queue reset needs VIRTIO_F_RING_RESET, which was not negotiated")
        reset = getattr(self.t, "reset_queue", None)
        if reset is None:
            raise DriverError("this transport cannot reset a single queue")
        if not 0 <= queue < len(self.queues):
            raise DriverError(f"queue {queue} does not exist")
        qs = self.queues[queue]
        if qs.owner:
            raise DriverError(f"queue {queue} belongs to the {qs.owner}")
        try:
            reset(queue)
        except TransportError as exc:
            raise DriverError(f"queue {queue} reset failed: {exc}") from exc
        # the device let go of the queue: only now is its memory ours again
        for req in qs.inflight.values():
            req.error = DriverNotReady(f"queue {queue} was reset")
            req.done = True
        self._release(qs)
        try:
            fresh = self._setup_queue(queue, enable=False)
            self.queues[queue] = fresh
            rekey = getattr(self.buffer_layer, "rekey", None)
            if rekey is not None and self.buffer_layer.active(self):
                rekey(self, queue)
            self.t.enable_queue(queue)
        except (TransportError, PoolError, RingError) as exc:
            self._fail(DriverError(f"queue {queue} could not be set up again: {exc}"))
        if self.t.read_status() & DEVICE_NEEDS_RESET:
            self._fail(DeviceNeedsReset("device set DEVICE_NEEDS_RESET after a queue reset"))

    # -- configuration space -------------------------------------------------
    def read_config(self, offset: int, length: int) -> bytes:
        """Read config bytes consistently: retry until the generation is stable."""
        for _ in range(self.opts.config_retries):
            before = self.t.config_generation()
            data = self.t.read_config(offset, length)
            if self.t.config_generation() == before:
                self._generation = before
                return data
        self._fail(ConfigUnstable(f"configuration generation changed on each of "
                                  f"{self.opts.config_retries} reads"))
        raise AssertionError("unreachable")

    # -- guest buffers -------------------------------------------------------
    def alloc_guest(self, length: int) -> GuestBuffer:
        """Caller-owned RAM for zero-copy requests (bounced under SWIOTLB)."""
        a = self.ram.alloc(length, timeout=self.opts.pool_wait)
        return GuestBuffer(a.addr, length)

    def free_guest(self, buf: GuestBuffer) -> None:
        self.ram.free(buf.addr)

    # -- submission ------------------------------------------------------------
    def _require_ready(self) -> None:
        if self.state != "ready":
            raise DriverNotReady(f"driver is {self.state}" +
                                 (f" after: {self.last_error}" if self.last_error else ""))

    def _safe_queue(self, queue: int) -> _Queue:
        if not 0 <= queue < len(self.queues):
            raise DriverError(f"queue {queue} does not exist")
        qs = self.queues[queue]
        if qs.owner:
            raise DriverError(f"queue {queue} belongs to the {qs.owner}")
        qs.used = True
        return qs

    def _place(self, data: bytes, allocs: list[Allocation]) -> int:
        a = self.dma.alloc(len(data), timeout=self.opts.pool_wait)
        allocs.append(a)
        self.t.memory.write(a.addr, data)
        return a.addr

    def submit(self, queue: int, out: list, in_: list) -> Request:
        """Make one buffer available: ``out`` device-readable parts (bytes or
        GuestBuffer), ``in_`` device-writable parts (a length or GuestBuffer).

        When the DMA pool (the bounce pool under SWIOTLB) or the ring is full,
        completed requests are collected to make room and the submission is
        retried once; if it is still full, ``PoolExhausted`` (or RingError
        QUEUE_FULL) is raised and nothing stays allocated."""
        try:
            return self._submit(queue, out, in_)
        except (PoolError, RingError) as exc:
            full = isinstance(exc, PoolExhausted) or (
                isinstance(exc, RingError) and exc.code == RingErrorCode.QUEUE_FULL)
            if not full or not self.outstanding() or not self.poll():
                raise
        return self._submit(queue, out, in_)

    def _submit(self, queue: int, out: list, in_: list) -> Request:
        self._require_ready()
        qs = self._safe_queue(queue)
        allocs: list[Allocation] = []
        ctx = None
        if self.buffer_layer is not None:
            # A part sealed into guest memory is seen by whoever shares it,
            # so its counter may never be used again: make sure the ring takes
            # the chain (two descriptors at most) before anything is sealed.
            if qs.ring.num_free < 2:
                raise RingError(RingErrorCode.QUEUE_FULL, "no room for a sealed chain")
            out, in_, ctx = self.buffer_layer.seal(self, queue, out, in_, allocs)
        copy_back: list[tuple[int, int, GuestBuffer | None]] = []
        out_segs: list[tuple[int, int]] = []
        in_segs: list[tuple[int, int]] = []
        mem = self.t.memory
        wait = self.opts.pool_wait
        # Small parts (headers, status bytes) and the indirect table share one
        # allocation: fewer pool operations per request.
        nseg = sum(1 for p in out if isinstance(p, GuestBuffer) or p) + \
            sum(1 for p in in_ if isinstance(p, GuestBuffer) or p)
        table = 16 * nseg if nseg > 1 and self.opts.use_indirect and qs.config.indirect else 0
        small = sum(_pad(len(p)) for p in out if not isinstance(p, GuestBuffer) and 0 < len(p) <= SMALL) + \
            sum(_pad(p) for p in in_ if not isinstance(p, GuestBuffer) and 0 < p <= SMALL)
        try:
            indirect = cursor = 0
            if table + small:
                block = self.dma.alloc(table + small, 16, timeout=wait)
                allocs.append(block)
                indirect = block.addr if table else 0
                cursor = block.addr + table
            for part in out:
                if isinstance(part, GuestBuffer):
                    if self.swiotlb:
                        out_segs.append((self._place(mem.read(part.addr, part.length), allocs), part.length))
                    else:
                        out_segs.append((part.addr, part.length))
                elif part:
                    n = len(part)
                    if n <= SMALL:
                        mem.write(cursor, part)
                        out_segs.append((cursor, n))
                        cursor += _pad(n)
                    else:
                        out_segs.append((self._place(part, allocs), n))
            for part in in_:
                if isinstance(part, GuestBuffer):
                    if self.swiotlb:
                        a = self.dma.alloc(part.length, timeout=wait)
                        allocs.append(a)
                        in_segs.append((a.addr, part.length))
                        copy_back.append((a.addr, part.length, part))
                    else:
                        in_segs.append((part.addr, part.length))
                elif part:
                    if part <= SMALL:
                        addr = cursor
                        cursor += _pad(part)
                        # 0xff: a status byte the device never wrote cannot read as OK (0).
                        mem.write(addr, b"\xff" * part)
                    else:
                        a = self.dma.alloc(part, timeout=wait)
                        allocs.append(a)
                        addr = a.addr
                    in_segs.append((addr, part))
                    copy_back.append((addr, part, None))
            token = next(self._tokens)
            notify = qs.ring.add(out_segs, in_segs, token, indirect=indirect)
        except (PoolError, RingError) as exc:
            for a in allocs:
                self.dma.free(a)
            if ctx is not None and isinstance(exc, RingError):
                # sealed but not queued (cannot happen after the room check):
                # the counter is burnt, so the key must go with a reset
                self._fail(RingBroken(f"a sealed chain was not queued: {exc}"))
            if isinstance(exc, RingError) and exc.code != RingErrorCode.QUEUE_FULL:
                raise DriverError(f"could not queue request: {exc}") from exc
            raise
        req = Request(queue, token, allocs, copy_back, sum(n for _a, n in in_segs))
        if ctx is not None:
            req.layer_ctx = ctx
            self.buffer_layer.commit(ctx, bool(out_segs))
        qs.inflight[token] = req
        if notify:
            self._kick(queue)
        return req

    def submit_segments(self, queue: int, out: list[tuple[int, int]], in_: list[tuple[int, int]],
                        indirect: int = 0) -> Request:
        """Low level: make a chain of caller-chosen (address, length) segments
        available as is: no allocation, no bouncing, no address checks. For
        conformance tests that hand a device addresses it must refuse; the
        completion is still validated like any other."""
        self._require_ready()
        qs = self._safe_queue(queue)
        token = next(self._tokens)
        notify = qs.ring.add(list(out), list(in_), token, indirect=indirect)
        req = Request(queue, token, [], [], sum(n for _a, n in in_))
        qs.inflight[token] = req
        if notify:
            self._kick(queue)
        return req

    def _kick(self, queue: int) -> None:
        """Notify the device (the ring asked for it), counted where it is sent;
        inside ``kicks_held`` the kick waits for the end of the block."""
        if self._held is not None:
            self._held.add(queue)
            return
        self.counters.kicks += 1
        self.t.notify(queue)

    @contextmanager
    def kicks_held(self):
        """Submit several requests and kick each queue that asked for it once,
        at the end: the device then finds them together (a batch), as a
        driver that keeps a queue full hands them over."""
        if self._held is not None:          # nested: the outer block kicks
            yield
            return
        self._held = set()
        try:
            yield
        finally:
            held, self._held = self._held, None
            if self.state == "ready":
                for queue in sorted(held):
                    self._kick(queue)

    def take_raw(self, queue: int):
        """Hand ``queue`` to the raw layer (``raw.RawSplit`` / ``raw.RawPacked``).

        Only a queue the safe layer never used; afterwards the safe layer
        refuses it. Kick with ``transport.notify``; read interrupts from the
        transport."""
        qs = self._hand_over(queue, "raw layer")
        return (RawPacked if qs.config.layout == PACKED else RawSplit)(self.t.memory, qs.config)

    def stream(self, queue: int, out_len: int, in_len: int, depth: int | None = None):
        """Hand ``queue`` to a ``stream.Stream``: fixed-shape requests (one
        device-readable part of up to ``out_len`` bytes, one device-writable
        part of up to ``in_len``) submitted and completed in batches."""
        qs = self._hand_over(queue, "stream")
        return Stream(self, queue, qs, out_len, in_len, depth)

    def _hand_over(self, queue: int, owner: str) -> _Queue:
        """Give ``queue`` to another layer; only a queue the safe layer never used."""
        self._require_ready()
        if not 0 <= queue < len(self.queues):
            raise DriverError(f"queue {queue} does not exist")
        qs = self.queues[queue]
        if qs.owner:
            raise DriverError(f"queue {queue} already belongs to the {qs.owner}")
        if qs.used or qs.inflight:
            raise DriverError(f"queue {queue} was already used by the safe layer")
        qs.owner = owner
        return qs

    def queue_config(self, queue: int) -> RingQueueConfig:
        """Where the rings of ``queue`` are (for raw access and observation)."""
        return self.queues[queue].config

    # -- completion -------------------------------------------------------------
    def _collect(self, qs: _Queue, done: list | None = None) -> int:
        try:
            items = qs.ring.collect()
        except RingError as exc:
            self._fail(BY_RING_CODE.get(exc.code, RingBroken)(str(exc)))
        mem = self.t.memory
        for token, used in items:
            req = qs.inflight.pop(token)
            req.used_len = used
            parts = []
            for addr, n, user in req.copy_back:
                data = mem.read(addr, n)
                if user is not None:
                    mem.write(user.addr, data)   # bounce back into the caller's RAM
                else:
                    parts.append(data)
            req.data = b"".join(parts)
            if req.layer_ctx is not None:
                self.buffer_layer.open(self, req)
            for a in req.allocs:
                self.dma.free(a)
            req.allocs = []
            req.done = True
            if done is not None:
                done.append(req)
        self.counters.completions += len(items)
        return len(items)

    def poll(self) -> int:
        """Collect what every queue has completed; returns how many."""
        self._require_ready()
        return sum(self._collect(qs) for qs in self.queues if not qs.owner)

    def wait(self, req: Request, timeout: float | None = None) -> Request:
        """Block until ``req`` completes; raise the DeviceError that stopped it."""
        self._wait_until(lambda: req.done, req.queue, f"request {req.token} on queue {req.queue}",
                         timeout)
        if req.error is not None:
            raise detached(req.error)
        return req

    def wait_any(self, queue: int = 0, timeout: float | None = None) -> list[Request]:
        """Block until requests on ``queue`` complete (at least one); return
        those collected, in completion order, for a caller that submits anew
        as completions arrive. A request's error is on the request."""
        if not self._safe_queue(queue).inflight:
            raise DriverError(f"nothing in flight on queue {queue}")
        done: list[Request] = []
        self._wait_until(lambda: bool(done), queue, f"any request on queue {queue}", timeout, done)
        return done

    def _wait_until(self, finished, queue: int, what: str, timeout: float | None,
                    done: list | None = None) -> None:
        deadline = time.monotonic() + (self.opts.timeout if timeout is None else timeout)
        quiet = 0
        while not finished():
            self._require_ready()
            qs = self.queues[queue]
            if self._collect(qs, done) or finished():
                continue
            if qs.ring.enable_interrupts():
                continue  # used buffers arrived while we were enabling
            left = deadline - time.monotonic()
            if left <= 0:
                if self.t.read_status() & DEVICE_NEEDS_RESET:
                    self._fail(DeviceNeedsReset("device set DEVICE_NEEDS_RESET"))
                self._fail(RequestTimeout(f"{what} not completed in time"))
            irq = self.t.wait_interrupts(left)
            nq = sum(irq.queues.values())
            self.counters.queue_interrupts += nq
            self.counters.config_interrupts += irq.config
            spurious = nq
            if irq.config:
                spurious += self._config_changed(irq.config)
            if sum(self._collect(q, done if q is qs else None) for q in self.queues if not q.owner):
                quiet = 0
            else:
                quiet += spurious
                if quiet > self.opts.storm_limit:
                    self._fail(NotificationStorm(f"{quiet} interrupts without a used buffer"))

    def _config_changed(self, count: int) -> int:
        """Handle config interrupts; returns how many looked spurious."""
        if self.t.read_status() & DEVICE_NEEDS_RESET:
            self._fail(DeviceNeedsReset("device set DEVICE_NEEDS_RESET"))
        gen = self.t.config_generation()
        if gen != self._generation:
            self._generation = gen
            self.config_changed()
            return count - 1
        return count

    def config_changed(self) -> None:
        """Device-specific reaction to a configuration change."""

    def check(self) -> None:
        """Look at pending interrupts and device status without waiting."""
        self._require_ready()
        irq = self.t.take_interrupts()
        if irq.config:
            self._config_changed(irq.config)
        if self.t.read_status() & DEVICE_NEEDS_RESET:
            self._fail(DeviceNeedsReset("device set DEVICE_NEEDS_RESET"))

    # -- failure and reset ------------------------------------------------------
    def _fail(self, exc: DriverError) -> None:
        self._teardown(exc)
        try:
            raise exc
        finally:
            # No frame may keep the exception it raises: that reference cycle
            # would leave ring-core objects to the cyclic garbage collector.
            del exc

    def _teardown(self, exc: DriverError | None) -> None:
        """Reset the device first; only then give memory back."""
        try:
            self.t.reset()
        except TransportError as te:
            self.state = "dead"
            if exc is not None:
                self.last_error = detached(exc)
                exc.args = (f"{exc.args[0] if exc.args else exc}; device reset also failed: {te}",)
            return
        self.counters.resets += 1
        for qs in self.queues:
            for req in qs.inflight.values():
                req.error = detached(exc) if exc else DriverNotReady("driver was reset")
                req.done = True
        self._release_queues()
        self.negotiated = 0
        self.state = "reset"
        self.last_error = detached(exc) if exc else None

    def _release_queues(self) -> None:
        for qs in self.queues:
            self._release(qs)
        self.queues = []

    def _release(self, qs: _Queue) -> None:
        """Free a queue's memory: its requests' buffers and its rings."""
        for req in qs.inflight.values():
            for a in req.allocs:
                self.dma.free(a)
            req.allocs = []
        qs.inflight.clear()
        for a in qs.allocs:
            self.dma.free(a)

    def transport_closed(self) -> None:
        """The transport went away: the device can no longer act, so drop
        every ring and request without touching the device."""
        for qs in self.queues:
            for req in qs.inflight.values():
                req.error = DriverNotReady("transport closed")
                req.done = True
        self._release_queues()
        self.state = "closed"

    def shutdown(self) -> None:
        """Reset the device and release everything (a clean stop)."""
        if self.state != "dead":
            self._teardown(None)

    def outstanding(self) -> int:
        return sum(len(qs.inflight) for qs in self.queues)


def detached(exc: DriverError) -> DriverError:
    """A copy of ``exc`` without a traceback, safe to keep on long-lived objects
    (a stored raised exception would tie its frames, and so the rings, into a
    reference cycle)."""
    return type(exc)(*exc.args)

