"""The transport-independent virtio device model.

``VirtioDevice`` holds what every device has: the status state machine,
feature offer and acceptance, configuration space with its generation,
and the virtqueues (split or packed, chosen by negotiation). A device type
(blk, rng) subclasses it and implements ``handle(queue, io)``, which
carries out one request and returns the used length.

The device touches guest memory only through the map its transport handed
it (``set_memory``); every ring and buffer access is bounds-checked there.
Any ring error (a descriptor outside that memory, straddling its end, a
malformed chain) stops the device: it sets DEVICE_NEEDS_RESET, tells the
driver with a configuration change interrupt, and processes nothing more
until it is reset.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field, replace

from device_ref.device import status as status_machine
from device_ref.device.admin import AdminCommands, reply
from device_ref.device.chain import ChainIO
from device_ref.device.config_space import ConfigSpace
from device_ref.device.device_queue import DeviceQueue, MemoryMap, RingFault, open_device_queue
from device_ref.device.features import (DEVICE_NEEDS_RESET, DRIVER_OK, F_ADMIN_VQ, F_IN_ORDER,
                                        F_RING_RESET, F_SUSPEND, F_SWIOTLB, FAILED, FEATURES_OK,
                                        SUSPEND, bit, has)
from device_ref.device.negotiation import FeatureRules, refusal
from device_ref.device_types import SwiotlbNotAllowed, swiotlb_allowed
from device_ref.ring.batch import POPPED, SEG, SEG_WRITABLE, Segment
from device_ref.transport import (BounceRegion, DeviceBackend, DeviceHost, QueueConfig,
                                  TransportError)
from device_ref.device.features import ACKNOWLEDGE, DRIVER


@dataclass
class QueueState:
    max_size: int
    config: QueueConfig | None = None
    enabled: bool = False
    ring: DeviceQueue | None = None
    base: int | None = None   # vhost-user SET_VRING_BASE: where the device resumes
    was_reset: bool = False   # reset alone (VIRTIO_F_RING_RESET): may be set up again


@dataclass
class Event:
    kind: str    # "violation", "needs_reset", "reset", "refused_features", ...
    detail: str


class _NoHost:
    def queue_interrupt(self, queue: int) -> None:
        pass

    def config_interrupt(self) -> None:
        pass


@dataclass
class DeviceCounters:
    requests: int = 0
    queue_interrupts: int = 0
    config_interrupts: int = 0
    resets: int = 0
    per_queue_used: dict[int, int] = field(default_factory=dict)


class VirtioDevice(DeviceBackend):
    # Behind a restricted DMA pool: the transport maps only the bounce region
    # (set by restricted_pool.behind_pool).
    pool_only = False

    def __init__(self, device_id: int, num_queues: int, queue_size: int,
                 rules: FeatureRules, config: bytes,
                 writable_config: tuple[tuple[int, int], ...] = (),
                 bounce: BounceRegion | None = None) -> None:
        if has(rules.offered, F_SWIOTLB) and not swiotlb_allowed(device_id):
            raise SwiotlbNotAllowed(f"device id {device_id} carries guest addresses in its requests "
                             "and cannot offer VIRTIO_F_SWIOTLB (swiotlb.dev.device-types)")
        self._id = device_id
        self.rules = rules
        self._config_layout = config
        self.config = ConfigSpace(config, writable_config)
        self._bounce = bounce
        self._host: DeviceHost = _NoHost()
        self.queues = [QueueState(queue_size) for _ in range(num_queues)]
        self.memory: object | None = None
        self.status = 0
        self._driver_features = 0
        self.negotiated = 0
        self._config_pending = False  # a configuration change while suspended
        self.events: list[Event] = []
        self.counters = DeviceCounters()
        # An optional buffer-protection layer (device_ref.qenc): it owns a
        # register window, forgets its keys on reset, and sees every chain
        # before the device type does.
        self.buffer_layer = None
        # With IN_ORDER negotiated, return each batch as one used entry (the
        # spec allows it; it exercises the driver's batch handling).
        self.coalesce_in_order = False
        # After a kick is served, keep looking for new buffers this long (s)
        # before going back to wait for the next kick (0: never); set by
        # `device-ref serve --poll-us`.
        self.poll_s = 0.0
        # Serve at most this many chains at a time and send the interrupt
        # after each group, not once per kick (0: all at once); set by
        # `device-ref serve --completion-batch`. A driver that submits as
        # completions arrive gets work sooner and the two sides overlap.
        self.completion_batch = 0
        self._polling = True          # the last poll found work (or none failed yet)
        self._slept_at = 0.0          # when notify last returned to wait for a kick
        # Group administration (VIRTIO_F_ADMIN_VQ): the command state and the
        # index of the one administration virtqueue, after the device type's
        # own queues (add_admin_queue); None: the device offers no such queue.
        self.admin: AdminCommands | None = None
        self.admin_queue: int | None = None

    def add_admin_queue(self, commands: AdminCommands | None = None, size: int = 64) -> None:
        """Offer VIRTIO_F_ADMIN_VQ with one administration virtqueue placed
        after the device type's queues, serving ``commands`` (default: the
        self group's list and capability commands)."""
        self.admin = commands if commands is not None else AdminCommands()
        self.admin_queue = len(self.queues)
        self.queues.append(QueueState(size))
        self.rules = replace(self.rules, offered=self.rules.offered | bit(F_ADMIN_VQ))

    def admin_queues(self) -> tuple[int, int]:
        """(index of the first administration virtqueue, how many there are);
        the count is 0 unless VIRTIO_F_ADMIN_VQ was negotiated."""
        if self.admin_queue is None or not has(self.negotiated, F_ADMIN_VQ):
            return (0, 0)
        return (self.admin_queue, 1)

    # -- DeviceBackend: identity and features ---------------------------
    def attach(self, host: DeviceHost) -> None:
        self._host = host

    def device_id(self) -> int:
        return self._id

    def num_queues(self) -> int:
        return len(self.queues)

    def queue_max_size(self, queue: int) -> int:
        return self._queue(queue).max_size

    def device_features(self) -> int:
        return self.rules.offered

    def has_offered(self, n: int) -> bool:
        return has(self.rules.offered, n)

    def set_driver_features(self, features: int) -> None:
        if self.status & FEATURES_OK:
            # Features are fixed once FEATURES_OK stuck; only a reset reopens them.
            self.record("violation", "driver features written after FEATURES_OK")
            return
        self._driver_features = features

    def driver_features(self) -> int:
        return self._driver_features

    def bounce_region(self) -> BounceRegion | None:
        return self._bounce

    def pci_structures(self) -> list[tuple[int, int, int]]:
        """Register blocks inside the device's configuration space that a
        PCI transport announces with their own structure capability:
        (cfg_type, offset in the configuration space, length)."""
        structure = getattr(self.buffer_layer, "pci_structure", None)
        return [structure()] if structure is not None else []

    # -- status ---------------------------------------------------------
    def read_status(self) -> int:
        return self.status

    def write_status(self, value: int) -> None:
        if (value | self.status) & SUSPEND and has(self.negotiated, F_SUSPEND) and value:
            if self._suspend_step(value):
                return
            value &= ~SUSPEND
        why = refusal(self.rules, self._driver_features)
        t = status_machine.step(self.status, value, why is None)
        if t.violation:
            self.record("violation", t.violation)
        if t.reset:
            self.reset()
            return
        if value & FEATURES_OK and not self.status & FEATURES_OK and why is not None:
            self.record("refused_features", why)
        self.status = t.status
        if t.features_ok:
            self.negotiated = self._driver_features
        if t.driver_ok:
            self._activate()

    def _suspend_step(self, value: int) -> bool:
        """VIRTIO_F_SUSPEND: True when the write was a suspend or resume (or
        left a suspended device as it is); False to go on with ``value``
        less the SUSPEND bit, which a device not yet running ignores."""
        if self.status & SUSPEND:
            if value & DRIVER_OK:          # resume
                self.status = (self.status & ~SUSPEND) | DRIVER_OK
                self.record("resume", "resumed")
                if self._config_pending:
                    self._config_pending = False
                    self.counters.config_interrupts += 1
                    self._host.config_interrupt()
                for i, q in enumerate(self.queues):
                    if q.ring is not None:
                        self.notify(i)
            return True
        if not self.status & DRIVER_OK or not value & SUSPEND:
            return False
        # Requests are served whole within a kick, so none is in flight here.
        self.status = (self.status & ~DRIVER_OK) | SUSPEND
        self.record("suspend", "suspended")
        return True

    def reset(self) -> None:
        """Forget everything the driver set up: rings, indices, features."""
        self._config_pending = False
        self.status = 0
        self._driver_features = 0
        self.negotiated = 0
        for q in self.queues:
            q.config = None
            q.enabled = False
            q.ring = None
            q.base = None
            q.was_reset = False
        # The memory map stays: it is the transport's, which replaces it
        # when the next negotiation changes what the device may reach.
        self.config.reset_driver_fields(self._config_layout)
        if self.buffer_layer is not None:
            self.buffer_layer.reset()
        if self.admin is not None:
            self.admin.reset()
        self.counters.resets += 1
        self.record("reset", "device reset")

    def needs_reset(self, reason: str) -> None:
        """Enter the error state: stop, and tell the driver."""
        if self.status & DEVICE_NEEDS_RESET:
            return
        self.status |= DEVICE_NEEDS_RESET
        self.record("needs_reset", reason)
        if self.status & DRIVER_OK:
            self.counters.config_interrupts += 1
            self._host.config_interrupt()

    def record(self, kind: str, detail: str) -> None:
        self.events.append(Event(kind, detail))
        if len(self.events) > 1000:  # a hostile driver must not grow this forever
            del self.events[:500]

    @property
    def swiotlb(self) -> bool:
        return has(self.negotiated, F_SWIOTLB)

    # -- configuration space --------------------------------------------
    def config_generation(self) -> int:
        return self.config.generation

    def read_config(self, offset: int, length: int) -> bytes:
        if self.buffer_layer is not None and self.buffer_layer.owns_config(offset, length):
            return self.buffer_layer.read_register(offset, length)
        return self.config.read(offset, length)

    def write_config(self, offset: int, data: bytes) -> None:
        if self.status & SUSPEND:
            self.record("ignored", "configuration write while suspended")
            return
        if self.buffer_layer is not None and self.buffer_layer.owns_config(offset, len(data)):
            self.buffer_layer.write_register(offset, data)
            return
        self.config.driver_write(offset, data)

    def update_config(self, offset: int, data: bytes) -> None:
        self.config.device_update(offset, data)
        if self.status & SUSPEND:
            self._config_pending = True     # told when the device resumes
        elif self.status & DRIVER_OK:
            self.counters.config_interrupts += 1
            self._host.config_interrupt()

    # -- queues ---------------------------------------------------------
    def _queue(self, queue: int) -> QueueState:
        if not 0 <= queue < len(self.queues):
            raise TransportError(f"queue {queue} does not exist (device has {len(self.queues)})")
        return self.queues[queue]

    def set_queue(self, queue: int, config: QueueConfig) -> None:
        q = self._queue(queue)
        if q.enabled or (self.status & DRIVER_OK and not q.was_reset):
            raise TransportError(f"queue {queue} configured after it was enabled")
        if not 0 < config.size <= q.max_size:
            raise TransportError(f"queue size {config.size} not in 1..{q.max_size}")
        q.config = config

    def enable_queue(self, queue: int) -> None:
        q = self._queue(queue)
        if q.config is None:
            raise TransportError(f"queue {queue} enabled before it was configured")
        q.enabled = True
        q.was_reset = False
        if self.status & DRIVER_OK:
            self._open(queue, q)

    def reset_queue(self, queue: int) -> None:
        """Reset one queue (VIRTIO_F_RING_RESET): stop using it and forget
        its rings, indices and the buffers in flight on it, which are never
        used; the driver may configure and enable it again. The device's
        other queues run on."""
        q = self._queue(queue)
        if not has(self.negotiated, F_RING_RESET):
            self.record("violation", "queue reset without VIRTIO_F_RING_RESET")
            raise TransportError("queue reset needs VIRTIO_F_RING_RESET negotiated")
        q.config = None
        q.enabled = False
        q.ring = None
        q.base = None
        q.was_reset = True
        if self.buffer_layer is not None:
            self.buffer_layer.queue_reset(queue)
        self.record("queue_reset", f"queue {queue} reset alone")

    def set_memory(self, memory: object) -> None:
        self.memory = memory

    def set_queue_base(self, queue: int, base: int) -> None:
        """Where the device resumes popping (vhost-user SET_VRING_BASE): split,
        the next available index; packed, the index with the wrap counter in bit 15."""
        q = self._queue(queue)
        if q.ring is not None:
            raise TransportError(f"queue {queue} base set while it runs")
        q.base = base

    def queue_base(self, queue: int) -> int:
        """Where the device would pop next (vhost-user GET_VRING_BASE)."""
        q = self._queue(queue)
        return q.ring.ring.state if q.ring is not None else (q.base or 0)

    def start(self, features: int) -> bool:
        """For transports with no status register (vhost-user without the
        STATUS protocol feature): run the initialisation steps on the driver's
        behalf with ``features``; True if the device reached DRIVER_OK."""
        if self.status & DRIVER_OK:
            return True
        self.write_status(ACKNOWLEDGE)
        self.write_status(ACKNOWLEDGE | DRIVER)
        self.set_driver_features(features)
        self.write_status(ACKNOWLEDGE | DRIVER | FEATURES_OK)
        if not self.status & FEATURES_OK:
            return False
        self.write_status(ACKNOWLEDGE | DRIVER | FEATURES_OK | DRIVER_OK)
        return bool(self.status & DRIVER_OK) and not self.status & DEVICE_NEEDS_RESET

    def reachable_memory(self) -> object | None:
        """The memory the device will use from DRIVER_OK on: under
        VIRTIO_F_SWIOTLB only the part of the transport's map inside the
        bounce region, whatever the transport handed over (so the device
        keeps the rule on any transport). A fault-injection device that is
        meant to ignore SWIOTLB overrides this to return ``self.memory``."""
        if self.memory is None or not (self.swiotlb and self._bounce is not None):
            return self.memory
        b = self._bounce
        inside = []
        for r in self.memory.regions:  # type: ignore[attr-defined]
            lo, hi = max(r.gpa, b.base), min(r.gpa + r.size, b.end)
            if lo < hi:
                inside.append((lo, r.view[lo - r.gpa:hi - r.gpa]))
        if [(lo, len(v)) for lo, v in inside] == [(r.gpa, r.size) for r in self.memory.regions]:
            return self.memory   # already restricted (the usual case)
        restricted = MemoryMap()
        for lo, view in inside:
            restricted.add_region(lo, view)
        return restricted

    def _activate(self) -> None:
        self.memory = self.reachable_memory()
        for i, q in enumerate(self.queues):
            if q.enabled and q.ring is None:
                self._open(i, q)
                if self.status & DEVICE_NEEDS_RESET:
                    return

    def _open(self, index: int, q: QueueState) -> None:
        if self.memory is None:
            self.needs_reset("queue enabled but the device was given no guest memory")
            return
        assert q.config is not None
        try:
            q.ring = open_device_queue(self.memory, q.config, self.negotiated, start=q.base,
                                       batch=self.completion_batch or None)
        except RingFault as exc:
            self.needs_reset(f"queue {index}: {exc}")

    def _running(self) -> bool:
        return bool(self.status & DRIVER_OK) and not self.status & (DEVICE_NEEDS_RESET | FAILED)

    def _serve_batch(self, queue: int, ring: DeviceQueue, chains: list) -> bool:
        """Handle one popped batch and give it back to the driver; True if the
        driver wants an interrupt. A separate method so that a test variant of
        a device can change what happens to requests without copying notify."""
        layer = self.buffer_layer
        memory = ring.memory
        set_written = ring.set_written
        for i, chain in enumerate(chains):
            io = ChainIO(memory, chain.segments)
            set_written(i, self.handle(queue, io) if layer is None
                        else layer.serve(queue, io, self.handle))
        self.counters.requests += len(chains)
        return ring.push(self._coalesce())

    def _coalesce(self) -> bool:
        """One used entry per batch under IN_ORDER, when asked for; never with
        a buffer-protection layer, whose replies each need their own used
        length (qenc.dev.in-order-each)."""
        return (self.coalesce_in_order and self.buffer_layer is None
                and has(self.negotiated, F_IN_ORDER))

    def _serve_records(self, queue: int, ring: DeviceQueue, count: int, pair) -> bool:
        """``_serve_batch`` for a device type with ``handle_pair``, straight
        from the popped records: a chain of one readable and one writable
        descriptor goes to ``handle_pair`` on two views of guest memory, with
        no chain object made; any other chain goes to ``handle``. The C
        loop (ring/pair_loops.c) serves the pairs when it is built; a chain
        it leaves, and every chain without it, is served here."""
        layer = self.buffer_layer
        batch = ring.batch
        memory = ring.memory
        records, segs = batch.chains, batch.segs
        loops = ring.loops
        i = s = 0
        while i < count:
            if loops is not None:
                crypt = None if layer is None else layer.pair_loop_args(queue, count - i)
                if crypt is False:      # the layer wants Python for the rest of the batch
                    loops = None
                else:
                    i, s = loops.serve_pairs(memory._regions, records, segs, i, s, count, queue,
                                             pair, crypt)
                    if i == count:
                        break
            nseg = POPPED.unpack_from(records, POPPED.size * i)[1]
            chain = [SEG.unpack_from(segs, SEG.size * (s + k)) for k in range(nseg)]
            if nseg == 2 and not chain[0][2] & SEG_WRITABLE and chain[1][2] & SEG_WRITABLE:
                r = memory.translate(chain[0][0], chain[0][1])
                w = memory.translate(chain[1][0], chain[1][1])
                n = pair(queue, r, w) if layer is None else layer.serve_pair(queue, r, w, pair)
            else:
                io = _record_io(memory, segs, s, nseg)
                n = self.handle(queue, io) if layer is None else layer.serve(queue, io, self.handle)
            batch.set_written(i, n)
            i += 1
            s += nseg
        self.counters.requests += count
        return ring.push(self._coalesce())

    def _pair_handler(self):
        """``handle_pair`` when this device type has one at least as derived
        as its ``handle`` (a subclass that changes ``handle`` alone keeps
        every chain on ``handle``), else None."""
        return self._own_handler("handle_pair")

    def _own_handler(self, name: str):
        """The bound method ``name`` when this device type defines it at
        least as derived as ``handle``, else None."""
        cls = type(self)
        cache = cls.__dict__.get("_handler_cache")
        if cache is None:
            cache = {}
            cls._handler_cache = cache
        ok = cache.get(name)
        if ok is None:
            at = next((k for k in cls.__mro__ if name in k.__dict__), VirtioDevice)
            handle_at = next(k for k in cls.__mro__ if "handle" in k.__dict__)
            ok = cache[name] = at is not VirtioDevice and issubclass(at, handle_at)
        return getattr(self, name) if ok and "handle" not in self.__dict__ else None

    def _serve_led(self, queue: int, ring: DeviceQueue, count: int, lead) -> bool:
        """``_serve_batch`` for a device type with ``serve_leading``: it serves
        the popped records it knows the shape of, from where it is told, and
        returns where it stopped; ``handle`` serves that chain, and so on."""
        batch = ring.batch
        i = s = 0
        while True:
            i, s = lead(queue, ring, i, s, count)
            if i >= count:
                break
            nseg = POPPED.unpack_from(batch.chains, POPPED.size * i)[1]
            batch.set_written(i, self.handle(queue, _record_io(ring.memory, batch.segs, s, nseg)))
            i += 1
            s += nseg
        self.counters.requests += count
        return ring.push(self.coalesce_in_order and has(self.negotiated, F_IN_ORDER))

    def notify(self, queue: int) -> None:
        """Process every available buffer on ``queue`` (a kick)."""
        if not self._running() or not 0 <= queue < len(self.queues):
            return
        ring = self.queues[queue].ring
        if ring is None:
            return
        if queue == self.admin_queue:
            self._serve_admin(queue, ring)
            return
        notify = False
        # chains go straight from the popped records to handle_pair, unless
        # a variant of this device changes _serve_batch
        plain = type(self)._serve_batch is VirtioDevice._serve_batch
        pair = self._pair_handler() if plain else None
        # a device type's own loop over the shapes it knows (blk's header,
        # data, status); unprotected queues only: a layer that protects this
        # queue sees every chain
        layer = self.buffer_layer
        lead = (self._own_handler("serve_leading")
                if plain and (layer is None or layer.pair_loop_args(queue, 0) is None)
                else None)
        if self.poll_s and not self._polling:
            # polling is off after a poll that found nothing; back on when
            # the kick came so soon after that a poll would have caught it
            self._polling = time.perf_counter() - self._slept_at <= self.poll_s
        count = 0
        while True:
            try:
                while True:
                    if not count:
                        count = ring.pop_records()
                    if not count:
                        if ring.rearm():
                            continue
                        break
                    if pair is not None:
                        notify = self._serve_records(queue, ring, count, pair) or notify
                    elif lead is not None:
                        notify = self._serve_led(queue, ring, count, lead) or notify
                    else:
                        notify = self._serve_batch(queue, ring, ring.batch.chain_list()) or notify
                    count = 0
                    if notify and self.completion_batch:
                        self.counters.queue_interrupts += 1
                        self._host.queue_interrupt(queue)
                        notify = False
                if notify:
                    self.counters.queue_interrupts += 1
                    self._host.queue_interrupt(queue)
                    notify = False
                if not (self.poll_s and self._polling):
                    self._slept_at = time.perf_counter()
                    return
                # poll a little before sleeping: a driver that submits as
                # completions arrive is back within microseconds, and a
                # device that went to sleep would have to be woken (on a
                # busy machine, a scheduler's slice later). A poll that
                # finds nothing turns polling off until kicks come fast
                # again: spinning in vain costs CPU and, on a shared core,
                # the scheduler's favour at the next wake-up.
                deadline = time.perf_counter() + self.poll_s
                while not count and time.perf_counter() < deadline:
                    count = ring.pop_records()
                if not count:
                    self._polling = False
                    self._slept_at = time.perf_counter()
                    return
            except RingFault as exc:
                self.needs_reset(f"queue {queue}: {exc}")
                return

    def _serve_admin(self, queue: int, ring: DeviceQueue) -> None:
        """Carry out every command on the administration virtqueue, in the
        order the driver queued them, and write each one's status and result."""
        assert self.admin is not None
        notify = False
        try:
            while True:
                chains = ring.pop()
                if not chains:
                    if ring.rearm():
                        continue
                    break
                for i, chain in enumerate(chains):
                    io = ChainIO(ring.memory, chain.segments)
                    outcome = self.admin.execute(io.read(0, io.readable_len))
                    written = io.write(0, reply(outcome, io.writable_len)) if io.writable_len else 0
                    ring.set_written(i, written)
                self.counters.requests += len(chains)
                notify = ring.push() or notify
        except RingFault as exc:
            self.needs_reset(f"queue {queue}: {exc}")
        else:
            if notify:
                self.counters.queue_interrupts += 1
                self._host.queue_interrupt(queue)

    def handle(self, queue: int, io: ChainIO) -> int:
        """Carry out one request; return the number of bytes written."""
        raise NotImplementedError

    # A device type may also define
    #     serve_leading(queue, ring, index, seg, count) -> (index, seg)
    # which serves popped records from ``index`` (its first segment ``seg``)
    # while they have a shape it knows, sets their used lengths in
    # ring.batch, and returns where it stopped (see _serve_led); or
    #     handle_pair(queue, readable: memoryview, writable: memoryview) -> int
    # for chains of one device-readable and one device-writable descriptor:
    # it gets views of guest memory (the driver may change ``readable`` at
    # any time: copy what you decide on) and returns the number of bytes it
    # wrote at the start of ``writable``. Other chains still go to ``handle``.


def _record_io(memory, segs, s: int, nseg: int) -> ChainIO:
    """A ChainIO over the ``nseg`` popped segment records from ``s``."""
    return ChainIO(memory, [Segment(a, ln, bool(f & SEG_WRITABLE))
                            for a, ln, f in (SEG.unpack_from(segs, SEG.size * (s + k))
                                             for k in range(nseg))])
