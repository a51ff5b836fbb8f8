"""The device status state machine, as a pure transition function.

Driver-owned bits are ACKNOWLEDGE, DRIVER, FEATURES_OK, DRIVER_OK and
FAILED; DEVICE_NEEDS_RESET is the device's. A write of 0 is a reset. A
driver may only add bits, each after its predecessor (ACKNOWLEDGE, DRIVER,
FEATURES_OK, DRIVER_OK); FEATURES_OK only sticks when the device accepts
the features. Anything else is a protocol violation the device records and
does not act on.
"""
from __future__ import annotations

from dataclasses import dataclass

from device_ref.device.features import (ACKNOWLEDGE, DEVICE_NEEDS_RESET, DRIVER, DRIVER_OK,
                                        FAILED, FEATURES_OK)

DRIVER_BITS = ACKNOWLEDGE | DRIVER | FEATURES_OK | DRIVER_OK | FAILED
# Each step of initialisation and the bit that must already be set.
PREREQUISITE = {DRIVER: ACKNOWLEDGE, FEATURES_OK: DRIVER, DRIVER_OK: FEATURES_OK}


@dataclass(frozen=True)
class Transition:
    status: int             # the new status register value
    reset: bool = False     # the write was a reset
    features_ok: bool = False   # FEATURES_OK became set by this write
    driver_ok: bool = False     # DRIVER_OK became set by this write
    failed: bool = False        # FAILED became set by this write
    violation: str | None = None


def step(current: int, written: int, features_acceptable: bool) -> Transition:
    """The status after the driver writes ``written`` over ``current``."""
    if written == 0:
        return Transition(0, reset=True)
    if written & ~(DRIVER_BITS | DEVICE_NEEDS_RESET) & 0xFF or written > 0xFF:
        return Transition(current, violation=f"status {written:#x} sets undefined bits")
    cleared = current & DRIVER_BITS & ~written
    if cleared:
        return Transition(current, violation=f"driver cleared status bits {cleared:#x}")
    added = written & DRIVER_BITS & ~current
    new = current
    violation = None
    # Apply in initialisation order so one write may carry several steps.
    for b in (ACKNOWLEDGE, DRIVER, FEATURES_OK, DRIVER_OK):
        if not added & b:
            continue
        need = PREREQUISITE.get(b, 0)
        if need and not new & need:
            violation = violation or f"bit {b:#x} set before its prerequisite {need:#x}"
            continue
        if b == FEATURES_OK and not features_acceptable:
            continue  # refusal is shown by FEATURES_OK not sticking
        new |= b
    if added & FAILED:
        new |= FAILED
    return Transition(new, features_ok=bool(new & ~current & FEATURES_OK),
                      driver_ok=bool(new & ~current & DRIVER_OK),
                      failed=bool(new & ~current & FAILED), violation=violation)
