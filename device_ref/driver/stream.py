"""A queue driven at full rate: fixed-shape requests in batches.

``VirtioDriver.stream(queue, out_len, in_len)`` hands one queue to a
``Stream``. Every request on it has one device-readable part (the caller's
``GuestBuffer`` of at most ``out_len`` bytes) and one device-writable part
(a ``GuestBuffer`` of at most ``in_len`` bytes that receives the reply), as
on a network or echo queue. That fixed shape lets the stream do per request
only what the buffer protection in force demands, and per batch one ring
call and at most one notification:

* nothing protected: the caller's buffers go to the device as they are;
* VIRTIO_F_SWIOTLB: each ring position owns a pair of slots in the bounce
  region, allocated once; data is copied into the out slot on submission
  and out of the in slot on completion;
* queue encryption: the out part is sealed straight into the position's out
  slot (in the bounce region too, when both are negotiated); on completion
  the sealed reply is first copied into private memory, so the device
  cannot change it between the tag check and the decryption, and opened
  straight into the caller's buffer. A reply that fails its tag is wiped
  from the caller's buffer (the cipher may have decrypted into it before
  the check failed) before ``complete`` returns, raising ``QencAuthError``
  naming it: the caller never sees a byte of it.

The stream shares the driver's distrust: a bad used id or length, a silent
or storming device, or NEEDS_RESET fails the driver (reset first, memory
released after), exactly as for the driver's own requests. The
positions' slots belong to the queue and are released with it.
"""
from __future__ import annotations

import struct
import time
from typing import Sequence

from device_ref.device.features import DEVICE_NEEDS_RESET
from device_ref.driver.errors import (BY_RING_CODE, DeviceNeedsReset, DriverError,
                                      NotificationStorm, RequestTimeout, RingBroken)
from device_ref.qenc.algorithms import TAG_LEN
from device_ref.qenc.driver_side import QencAuthError
from device_ref.qenc.codec import AuthFailure, PartCodec
from device_ref.qenc.nonce import COUNTER_LIMIT, TO_DEVICE, TO_DRIVER, nonce
from cryptography.exceptions import InvalidTag

from device_ref.ring import RingError
from device_ref.ring.backend import pair_loops
from device_ref.ring.batch import USED, ChainBatch, UsedBatch
from device_ref.ring.memory import GuestMemory

PLAIN, BOUNCE, SEAL = 0, 1, 2     # what a stream does to the bytes (pair_loops.c modes)
# One position while a request holds it (struct flight in pair_loops.c):
# the caller's reply buffer, the request's counter and ticket, the reply's
# capacity, and 1 while the position is taken.
FLIGHT = struct.Struct("<QQQII")


class Stream:
    """Fixed-shape requests on one queue (see the module docstring)."""

    def __init__(self, drv, queue: int, qs, out_len: int, in_len: int,
                 depth: int | None = None) -> None:
        size = qs.config.size
        depth = size if depth is None else depth
        if out_len < 0 or in_len < 0 or out_len + in_len == 0:
            raise DriverError(f"stream parts of {out_len} and {in_len} bytes")
        if not 1 <= depth <= size:
            raise DriverError(f"stream depth {depth} not in 1..{size}")
        self.drv = drv
        self.queue = queue
        self.qs = qs
        self.out_len = out_len
        self.in_len = in_len
        self.depth = depth
        mem = drv.t.memory
        self._mem = mem
        layer = drv.buffer_layer
        ciphers = getattr(layer, "ciphers", {})
        cipher = ciphers.get(queue)
        self._cipher = cipher if cipher is not None and cipher.primitive is not None else None
        self._layer = layer if self._cipher is not None else None
        if self._cipher is not None:
            c = self._cipher
            self._sealer = PartCodec(c.primitive, c.algorithm, queue, TO_DEVICE)
            self._opener = PartCodec(c.primitive, c.algorithm, queue, TO_DRIVER)
        extra = TAG_LEN if self._cipher is not None else 0
        self._slots = self._cipher is not None or drv.swiotlb
        self._out_slot: list[memoryview] = []
        self._in_slot: list[memoryview] = []
        self._out_addr: list[int] = []
        self._in_addr: list[int] = []
        if self._slots:
            for _ in range(depth):
                for length, addrs, views in ((out_len + extra, self._out_addr, self._out_slot),
                                             (in_len + extra, self._in_addr, self._in_slot)):
                    a = drv.dma.alloc(max(length, 1), 64)
                    qs.allocs.append(a)     # released with the queue
                    addrs.append(a.addr)
                    views.append(mem.translate(a.addr, max(length, 1)))
        self._free = list(range(depth - 1, -1, -1))     # positions, taken from the end
        self._table = bytearray(FLIGHT.size * depth)   # a FLIGHT record per position
        self._mode = SEAL if self._cipher is not None else BOUNCE if self._slots else PLAIN
        self._loops = pair_loops() if isinstance(mem, GuestMemory) else None
        self._batch = ChainBatch(depth, 2 * depth)
        self._used = UsedBatch(depth)
        self._private = memoryview(bytearray(in_len + extra))   # replies are opened from here
        self._views: dict[int, memoryview] = {}
        self.submitted = 0      # tickets handed out: the n-th request submitted is ticket n
        self.completed = 0

    # -- caller buffers ---------------------------------------------------
    def _view(self, buf) -> memoryview:
        v = self._views.get(buf.addr)
        if v is None or len(v) != buf.length:
            if len(self._views) > 4 * self.depth:
                self._views.clear()
            v = self._views[buf.addr] = self._mem.translate(buf.addr, buf.length)
        return v

    # -- submission -------------------------------------------------------
    @property
    def room(self) -> int:
        """Requests that can be submitted before some complete."""
        return len(self._free)

    @property
    def in_flight(self) -> int:
        return self.depth - len(self._free)

    def submit(self, pairs: Sequence[tuple]) -> int:
        """Make (out, reply) ``GuestBuffer`` pairs available, in order, as far
        as there is room; returns how many went in (tickets ``submitted``
        before the call onwards)."""
        drv = self.drv
        drv._require_ready()
        # Seal only what the ring is sure to take (two descriptors a chain):
        # a sealed part's counter can never be used again.
        n = min(len(pairs), len(self._free), self.qs.ring.num_free // 2)
        if not n:
            return 0
        out_len, in_len = self.out_len, self.in_len
        cipher = self._cipher
        counter = cipher.counter if cipher is not None else 0
        if counter + n > COUNTER_LIMIT:
            raise DriverError(f"queue {self.queue}: the 64-bit counter is exhausted; "
                              f"reset and rekey")
        batch = self._batch
        batch.clear()
        pairs = list(pairs[:n])
        try:
            if self._loops is not None:
                seal = ((cipher.primitive.encrypt_into, self.queue, cipher.algorithm, counter)
                        if cipher is not None else None)
                slots = (self._out_addr, self._in_addr, self._out_slot) if self._slots else None
                got = self._loops.submit_pairs(
                    self._mem._regions, pairs, n, out_len, in_len, self._table, self._free,
                    slots, (batch.chains, batch.segs), self.submitted, self._mode, seal)
            else:
                got = self._submit_python(pairs, counter)
        except Exception as exc:   # noqa: BLE001 - parts may be sealed and never queued
            drv._fail(RingBroken(f"stream submission broke off: {exc}"))
        if got[1] is None:         # refused before anything was sealed
            src, dst = pairs[got[0]]
            raise DriverError(f"stream request of {src.length}/{dst.length} bytes does not "
                              f"fit {out_len}/{in_len} (or is empty)")
        batch.count, batch.nsegs = got
        try:
            added, notify = self.qs.ring.add_batch(batch)
        except RingError as exc:
            raise DriverError(f"could not queue stream requests: {exc}") from exc
        if added != n:   # cannot happen after the room check above
            drv._fail(RingBroken(f"the ring took {added} of {n} stream chains"))
        if cipher is not None:
            first = cipher.counter
            cipher.counter = first + added
            log = self._layer.nonce_log
            if log is not None:
                log.extend((cipher.key_id, nonce(self.queue, TO_DEVICE, c))
                           for c in range(first, first + added))
        self.submitted += added
        if notify:
            drv._kick(self.queue)
        return added

    def _submit_python(self, pairs: list, counter: int) -> tuple[int, int | None]:
        """``submit``'s loop, as pair_loops.c runs it: (chains, segments)
        added to the batch, or (index, None) for the first request that
        does not fit, before anything is sealed (a sealed part's counter
        is spent)."""
        out_len, in_len = self.out_len, self.in_len
        for i, (src, dst) in enumerate(pairs):
            if src.length > out_len or dst.length > in_len or not src.length + dst.length:
                return i, None
        batch = self._batch
        free = self._free
        view = self._view
        mode = self._mode
        seal = self._sealer.seal_into if mode == SEAL else None
        out_slot = self._out_slot
        ticket = self.submitted
        record = FLIGHT.pack_into
        table = self._table
        for src, dst in pairs:
            olen, ilen = src.length, dst.length
            p = free.pop()
            record(table, FLIGHT.size * p, dst.addr, counter, ticket, ilen, 1)
            if mode == SEAL:
                if olen:
                    seal(counter, view(src), out_slot[p][:olen + TAG_LEN])
                    olen += TAG_LEN
                if ilen:
                    ilen += TAG_LEN
                counter += 1
            elif mode == BOUNCE and olen:
                out_slot[p][:olen] = view(src)
            if mode == PLAIN:
                out_addr, in_addr = src.addr, dst.addr
            else:
                out_addr, in_addr = self._out_addr[p], self._in_addr[p]
            if olen and ilen:
                batch.append_pair(out_addr, olen, in_addr, ilen, p)
            else:
                batch.append([(out_addr, olen)] if olen else (),
                             [(in_addr, ilen)] if ilen else (), p)
            ticket += 1
        return batch.count, batch.nsegs

    # -- completion -------------------------------------------------------
    def complete(self) -> list[tuple[int, int]]:
        """Collect what the device has returned, without waiting: a list of
        (ticket, reply bytes now in the caller's buffer). Raises
        ``QencAuthError`` after collecting if any reply failed its tag; its
        ``completed`` holds that list for the replies that verified."""
        drv = self.drv
        drv._require_ready()
        got = self._used
        try:
            m = self.qs.ring.collect_batch(got)
        except RingError as exc:
            drv._fail(BY_RING_CODE.get(exc.code, RingBroken)(str(exc)))
        loops = self._loops
        try:
            if loops is not None:
                c = self._cipher
                opener = ((c.primitive.decrypt_into, self.queue, c.algorithm, self._private,
                           InvalidTag) if c is not None else None)
                out, failed = loops.complete_pairs(self._mem._regions, got.entries, m,
                                                   self._table, self._free, self._in_addr,
                                                   self._mode, opener)
            else:
                out, failed = self._complete_python(m)
        except Exception as exc:   # noqa: BLE001 - the ring handed back what it should not
            drv._fail(RingBroken(f"stream completion broke off: {exc}"))
        self.completed += m
        drv.counters.completions += m
        if failed:
            self._layer.auth_failures += len(failed)
            err = QencAuthError(f"queue {self.queue}: replies of requests {failed} failed "
                                f"their tags; nothing of them was released")
            err.completed = out     # the replies of this call that did verify
            raise err
        return out

    def _complete_python(self, m: int) -> tuple[list, list]:
        """``complete``'s loop, as pair_loops.c runs it."""
        out = []
        failed = []
        mode = self._mode
        table = self._table
        for p, used, _ in USED.iter_unpack(memoryview(self._used.entries)[:USED.size * m]):
            dst, counter, ticket, cap, busy = FLIGHT.unpack_from(table, FLIGHT.size * p)
            if not busy:
                raise RuntimeError(f"used token {p} is no position in flight")
            FLIGHT.pack_into(table, FLIGHT.size * p, 0, 0, 0, 0, 0)
            self._free.append(p)
            if mode == SEAL and cap:
                n = self._open(counter, p, used, cap, self._mem.translate(dst, cap))
                if n < 0:
                    failed.append(ticket)
                else:
                    out.append((ticket, n))
                continue
            if mode != PLAIN and used:
                self._mem.translate(dst, used)[:] = self._in_slot[p][:used]
            out.append((ticket, used))
        return out, failed

    def _open(self, counter: int, p: int, used: int, cap: int, dst: memoryview) -> int:
        """Open the sealed reply of position ``p`` into ``dst``; -1 if it fails."""
        if used < TAG_LEN or used - TAG_LEN > cap:
            return -1
        n = used - TAG_LEN
        try:
            # ciphertext then tag, both within the used length: nothing past it is read
            self._opener.open_into(counter, self._in_slot[p][:used], self._private[:used],
                                   dst[:n], n)
        except AuthFailure:
            # decrypt_into may have written unauthenticated bytes: wipe them
            # before the caller gets control back
            dst[:cap] = bytes(cap)
            return -1
        return n

    def wait(self, timeout: float | None = None) -> list[tuple[int, int]]:
        """Block until at least one request completes (or fail the driver)."""
        drv = self.drv
        ring = self.qs.ring
        t = drv.t
        deadline = time.monotonic() + (drv.opts.timeout if timeout is None else timeout)
        quiet = 0
        while True:
            done = self.complete()
            if done or not self.in_flight:
                return done
            if ring.enable_interrupts():
                continue
            left = deadline - time.monotonic()
            if left <= 0:
                if t.read_status() & DEVICE_NEEDS_RESET:
                    drv._fail(DeviceNeedsReset("device set DEVICE_NEEDS_RESET"))
                drv._fail(RequestTimeout(f"{self.in_flight} stream requests on queue "
                                         f"{self.queue} not completed in time"))
            irq = t.wait_interrupts(left)
            nq = sum(irq.queues.values())
            drv.counters.queue_interrupts += nq
            drv.counters.config_interrupts += irq.config
            if irq.config:
                drv._config_changed(irq.config)
            done = self.complete()
            if done:
                return done
            quiet += nq
            if quiet > drv.opts.storm_limit:
                drv._fail(NotificationStorm(f"{quiet} interrupts without a used buffer"))

    def run(self, pairs: Sequence[tuple]) -> list[int]:
        """Submit every pair, wait for all of them; their reply lengths, in order."""
        first = self.submitted
        results: dict[int, int] = {}
        pos = 0
        while pos < len(pairs) or self.in_flight:
            if pos < len(pairs) and self._free:
                pos += self.submit(pairs[pos:pos + len(self._free)])
            if self.in_flight:
                results.update(self.complete() or self.wait())
        return [results[first + k] for k in range(len(pairs))]
