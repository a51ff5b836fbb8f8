"""Feature acceptance: which driver feature sets a device agrees to.

The device's side of feature negotiation is a pure check run when the
driver sets FEATURES_OK: the accepted set must be a subset of what was
offered, must hold every feature the device cannot work without, and every
accepted feature must bring the features it depends on.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from device_ref.device.features import F_VERSION_1, bit


@dataclass(frozen=True)
class FeatureRules:
    offered: int
    # Features the device refuses to run without (VERSION_1 for a
    # non-transitional device; SWIOTLB for a device that insists on it).
    required: int = bit(F_VERSION_1)
    # bit number -> mask of bits that must be accepted alongside it.
    depends: dict[int, int] = field(default_factory=dict)


def refusal(rules: FeatureRules, accepted: int) -> str | None:
    """Why the device refuses ``accepted`` at FEATURES_OK, or None if it accepts."""
    extra = accepted & ~rules.offered
    if extra:
        return f"accepts features never offered: {extra:#x}"
    missing = rules.required & ~accepted
    if missing:
        return f"leaves out required features: {missing:#x}"
    for n, needs in sorted(rules.depends.items()):
        if accepted >> n & 1 and needs & ~accepted:
            return f"accepts bit {n} without the bits it depends on: {needs & ~accepted:#x}"
    return None
