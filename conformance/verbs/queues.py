"""Virtqueues: set-up, resets, notifications, and what the device returns on them."""
from __future__ import annotations

import time

from device_ref.ring import PACKED, SPLIT
from device_ref.ring.hostile import RingViolation
from device_ref.transport import TransportError
from device_ref.virtio_constants import F_RING_PACKED, FEATURES_OK

from conformance import shapes
from conformance.engine.core import QUEUE_SIZE, Completion, Engine, compare
from conformance.engine.registry import COMPARATOR, INT, MAX_WAIT_MS, TEXT, action, expectation
from conformance.outcomes import Failed, Skipped, Wedged


def last_used(e: Engine) -> Completion:
    e.collect()
    if not e.completions:
        raise Failed("no used buffer arrived", "a used buffer")
    return e.completions[-1]


@action("place_rings", where=TEXT.one_of("inside", "outside_region", "straddling"))
def place_rings(e: Engine, where: str) -> None:
    if e.region is None:
        raise Skipped("ring placement relative to the bounce region needs a device with one")
    e.placement = where


@action("setup_queues")
def setup_queues(e: Engine) -> None:
    if not e.status() & FEATURES_OK:
        raise Skipped("queues set up before features were accepted (FEATURES_OK not set)")
    layout = PACKED if e.negotiated >> F_RING_PACKED & 1 else SPLIT
    where = e.placement
    if where == "default":
        where = "inside" if e.swiotlb else "outside_region"
    for q in range(e.queue_count()):
        size = min(QUEUE_SIZE, e.t.queue_max_size(q))
        if layout == SPLIT:
            size = 1 << (size.bit_length() - 1)
        e.queues.append(e.setup_queue(q, layout, size, where))
    for b in (e.ram, e.bounce):
        if b is not None:
            e.dma_mark[id(b)] = b.next


@action("framing", style=TEXT.one_of("separate", "merged", "fragmented"),
        chunk=INT.range(1, 1 << 20).with_default(64))
def framing(e: Engine, style: str, chunk: int = 64) -> None:
    if chunk <= 0:
        raise Skipped(f"framing chunk {chunk} is not positive")
    e.framing = (style, chunk)


@action("set_avail_flags", value=INT)
def set_avail_flags(e: Engine, value: int) -> None:
    q = e.queue(0)
    if q.packed:
        raise Skipped("set_avail_flags applies to the split layout")
    for hq in e.queues:
        hq.set_avail_flags(value)


@action("set_used_event", ahead=INT)
def set_used_event(e: Engine, ahead: int) -> None:
    e.used_event_pinned = True
    for hq in e.queues:
        if hq.packed:
            raise Skipped("set_used_event applies to the split layout")
        hq.set_used_event(hq.used_idx() + ahead)


@action("submit_shape", shape=TEXT)
def submit_shape(e: Engine, shape: str) -> None:
    q = e.request_queue()
    parts, pending = e.ordinary_parts()
    pending.queue = q.index
    saved = e.framing
    e.framing = ("separate", 64)
    try:
        segs = e.segments(parts)
    finally:
        e.framing = saved
    shapes.submit(e, q, shape, segs, pending)


@action("kick")
def kick(e: Engine) -> None:
    live = {q.index for q in e.queues}
    # and a queue reset alone and not set up again (its old rings), as when
    # every queue was reset
    e.kick(e.queues + [q for q in e.retired if q.index not in live] if e.queues else e.retired)


@action("wait_used", timeout_ms=INT.range(0, MAX_WAIT_MS))
def wait_used(e: Engine, timeout_ms: int) -> None:
    deadline = time.monotonic() + timeout_ms / 1000
    while True:
        if e.collect() or not e.queues or e.s.synchronous:
            return
        if e.needs_reset():
            return      # a device that stopped will not return anything more
        left = deadline - time.monotonic()
        if left <= 0:
            return
        e.wait_interrupts(min(left, 0.05))


@action("queue_reset")
def queue_reset(e: Engine) -> None:
    reset = getattr(e.t, "reset_queue", None)
    if reset is None:
        raise Skipped("this transport has no per-queue reset (VIRTIO_F_RING_RESET)")
    # the queue ordinary requests go to (net: transmitq1, not receiveq1),
    # so that a request made available before the reset sits on it
    q = e.request_queue()
    try:
        reset(q.index)
    except TransportError as exc:
        raise Wedged(f"queue reset failed: {exc}") from None
    e.forget_before_reset([q])
    e.retired.append(q)
    e.queues = [x for x in e.queues if x is not q]
    e.queue_was_reset = (q.index, q.cfg.layout, q.cfg.size)


@action("queue_reenable", size=INT.with_default(None))
def queue_reenable(e: Engine, size: int | None = None) -> None:
    """Set the queue reset last up again on fresh rings and enable it.
    Key writes (qenc_keys) between queue_reset and this step land while
    the queue is reset, as the spec asks."""
    if e.queue_was_reset is None:
        raise Skipped("queue_reenable without an earlier queue_reset")
    index, layout, old_size = e.queue_was_reset
    e.queue_was_reset = None
    where = e.placement
    if where == "default":
        where = "inside" if e.swiotlb else "outside_region"
    e.queues = sorted([*e.queues, e.setup_queue(index, layout, size or old_size, where)],
                      key=lambda q: q.index)


@expectation("used_len", op=COMPARATOR, value=INT)
def expect_used_len(e: Engine, op: str, value: int) -> None:
    c = last_used(e)
    if c.room == 0:
        # nothing in the buffer was device-writable (a net frame to send):
        # the device wrote nothing, so the only right length is 0
        if c.used_len != 0:
            raise Failed(f"used length {c.used_len} for a buffer with no device-writable "
                         f"part", "used length 0")
        return
    if not compare(op, c.used_len, value):
        raise Failed(f"used length {c.used_len}", f"used length {op} {value}")


@expectation("no_used")
def expect_no_used(e: Engine) -> None:
    try:
        e.collect()
    except RingViolation as exc:
        raise Failed(f"a used entry appeared: {exc.observed}", "no used buffer") from None
    if e.since_kick:
        c = e.since_kick[0]
        raise Failed(f"{len(e.since_kick)} used buffer(s) since the kick (queue "
                     f"{c.queue}, length {c.used_len})", "no used buffer")
    for q in e.retired:
        try:
            used = q.collect()
        except RingViolation as exc:
            raise Failed(f"a used entry appeared on a ring set up before the reset: "
                         f"{exc.observed}", "nothing used from rings of before the reset") \
                from None
        if used:
            raise Failed(f"the device used {len(used)} buffer(s) on queue {q.index} of a "
                         f"ring set up before the reset",
                         "nothing used from rings of before the reset")


@expectation("notified")
def expect_notified(e: Engine) -> None:
    # The notification may follow the used entry by a moment (a back-end
    # signals its call eventfd after writing the ring): wait for it, up to
    # the step timeout, rather than reading only what has arrived.
    deadline = time.monotonic() + e.timeout
    e.drain()
    while e.irqs_since_kick == 0 and not e.s.synchronous:
        left = deadline - time.monotonic()
        if left <= 0:
            break
        e.wait_interrupts(min(left, 0.05))
    if e.irqs_since_kick == 0:
        raise Failed(f"no used buffer notification since the kick (waited {e.timeout:g} s)",
                     "a notification")


# how long a device in another thread or process gets to signal a use
NOTIFY_SETTLE_S = 0.1


@expectation("not_notified")
def expect_not_notified(e: Engine) -> None:
    e.drain()
    if not e.s.synchronous and not e.irqs_since_kick:
        # a device in another thread or process writes the used entry and
        # then signals: give a late notification time to land before
        # calling it absent (a loaded host can pause it between the two)
        time.sleep(NOTIFY_SETTLE_S)
        e.drain()
    if e.irqs_since_kick:
        raise Failed(f"{e.irqs_since_kick} used buffer notification(s) since the kick",
                     "no notification")


@expectation("descriptors", what=TEXT)
def expect_descriptors(e: Engine, what: str) -> None:
    if what == "unchanged":
        bad = [x for q in e.queues for x in q.changed_descriptors()]
        if bad:
            raise Failed(f"the device wrote into {bad[0]}" +
                         (f" (and {len(bad) - 1} more)" if len(bad) > 1 else ""),
                         "descriptors as the driver wrote them")
        return
    if not any(q.packed for q in e.queues):
        raise Skipped("stable_after_use is a packed-layout property")
    e.collect()
    time.sleep(0.05)
    bad = [x for q in e.queues for x in q.unstable_used()]
    if bad:
        raise Failed(f"{bad[0]} changed after the device marked it used",
                     "used descriptors keep their bytes")


@expectation("used_flags", op=COMPARATOR, value=INT)
def expect_used_flags(e: Engine, op: str, value: int) -> None:
    q = e.queue(0)
    if q.packed:
        raise Skipped("the used ring flags exist in the split layout only")
    got = q.used_flags()
    if not compare(op, got, value):
        raise Failed(f"used ring flags {got:#x}", f"used flags {op} {value}")


@expectation("completion_order", what=TEXT)
def expect_completion_order(e: Engine, what: str) -> None:
    e.collect()
    for q in e.queues:
        if q.order_break is not None:
            a, b = q.order_break
            raise Failed(f"queue {q.index}: buffer {b + 1} used after buffer {a + 1}",
                         "used in the order made available")
    if not any(q.used_count for q in e.queues):
        raise Failed("no buffer was used", "buffers used in order")
