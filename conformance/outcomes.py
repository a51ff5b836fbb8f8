"""How a step ends when it does not simply succeed."""
from __future__ import annotations

from device_ref.ring.hostile import RingOutcome


class StepOutcome(RingOutcome):
    """Base: carries expected versus observed for the evidence (as the ring
    outcomes of the runtime's hostile-ring writer do)."""

    def __init__(self, observed: str, expected: str = "", critical: bool = False) -> None:
        super().__init__(observed, expected)
        self.critical = critical


class Failed(StepOutcome):
    """The device did something the spec forbids (FAIL)."""


class Wedged(StepOutcome):
    """The device stopped working: no progress, NEEDS_RESET, died (WEDGED)."""


class Skipped(StepOutcome):
    """A precondition does not hold here (SKIP); ``observed`` says why."""


class EngineError(Exception):
    """The runner itself failed on a step (a runner or vector problem): exit 2,
    never a verdict about the device."""
