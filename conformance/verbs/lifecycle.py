"""Device status: reset, status writes, DRIVER_OK, and what the status reads."""
from __future__ import annotations

import time

from device_ref.transport import TransportError
from device_ref.virtio_constants import DEVICE_NEEDS_RESET as NEEDS_RESET
from device_ref.virtio_constants import DRIVER_OK, FEATURES_OK, STATUS_BITS, SUSPEND

from conformance import names
from conformance.engine.core import Engine
from conformance.engine.registry import NAMES, TEXT, action, expectation
from conformance.outcomes import Failed, Skipped, Wedged


@action("reset")
def reset(e: Engine) -> None:
    for q in e.queues:
        e.retired.append(q)
    e.queues = []
    e.pending.clear()
    e.driver_status = 0
    e.used_event_pinned = False
    e.framing = ("separate", 64)
    e.readable_log = []
    e.readable_batches = []
    try:
        e.t.write_status(0)
        deadline = time.monotonic() + e.timeout
        while e.t.read_status() != 0:
            if time.monotonic() > deadline:
                raise Wedged(f"device status stayed {names.status_text(e.status())} "
                             f"after a reset", "status 0 after reset")
            time.sleep(0.001)
    except TransportError as exc:
        raise Wedged(f"reset failed: {exc}") from None
    e.forget_before_reset(e.retired)
    e.negotiated = 0
    e.features_ok_written = False
    e.placement = "default"


@action("set_status", bits=NAMES.one_of(*STATUS_BITS))
def set_status(e: Engine, bits: list[str]) -> None:
    value = e.status() & ~NEEDS_RESET
    for b in bits:
        value |= STATUS_BITS[b]
    e.write_status(value)
    if "FEATURES_OK" in bits:
        e.features_ok_written = True
        if not e.status() & FEATURES_OK:
            e.negotiated = 0


@action("driver_ok")
def driver_ok(e: Engine) -> None:
    try:
        e.driver_status = e.status() & ~NEEDS_RESET | DRIVER_OK
        e.t.write_status(e.driver_status)
    except TransportError as exc:
        if e.placement in ("outside_region", "straddling") and e.swiotlb:
            raise Skipped("the front-end cannot give the back-end ring addresses outside "
                          f"the shared bounce region ({exc}); the OS enforces the rule") \
                from None
        raise Wedged(f"setting DRIVER_OK failed: {exc}") from None


@expectation("status", op=TEXT.one_of("has", "lacks"), bits=NAMES.one_of(*STATUS_BITS))
def expect_status(e: Engine, op: str, bits: list[str]) -> None:
    st = e.status()
    for b in bits:
        present = bool(st & STATUS_BITS[b])
        if present != (op == "has"):
            raise Failed(f"device status is {names.status_text(st)}",
                         f"status {op} {b}")


@expectation("suspend", state=TEXT.one_of("suspended", "resumed"))
def expect_suspend(e: Engine, state: str) -> None:
    st = e.status()
    if st & NEEDS_RESET:
        raise Skipped(f"the device set DEVICE_NEEDS_RESET instead of being {state}, "
                      "which the rule allows when it cannot")
    want_suspend = state == "suspended"
    if bool(st & SUSPEND) != want_suspend or bool(st & DRIVER_OK) == want_suspend:
        raise Failed(f"device status is {names.status_text(st)}", f"device {state}")


@expectation("needs_reset_if_stuck")
def expect_needs_reset_if_stuck(e: Engine) -> None:
    """A device that cannot go on after a hostile buffer says so with
    DEVICE_NEEDS_RESET; one whose queue still moves never reached that error
    state, so it had nothing to signal (it refused the buffer and stayed usable)."""
    if e.needs_reset():
        return
    if not e.offending:
        raise Skipped("no hostile buffer was made available, so no queue had reason to stop")
    e.collect()
    token, index = e.offending[-1]
    bad_used = e.offending_used(token)
    moved, said = e.try_later_buffer(index)
    if e.seen_needs_reset:
        return      # it signalled while the later buffer waited
    where = e.queue_name(index)
    bad = "offending buffer " + ("used" if bad_used else "never used")
    if moved or (moved is None and bad_used):
        e.remarks.append(f"no error state: on {where} the {bad}; " +
                         (said if moved else f"no later buffer tried ({said})"))
        return
    later = said if moved is False else f"no later buffer tried ({said})"
    raise Failed(f"device status is {names.status_text(e.status())}; on {where}: {bad}; "
                 f"{later}", "DEVICE_NEEDS_RESET set, or the queue going on")
