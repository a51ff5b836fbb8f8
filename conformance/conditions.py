"""A requirement's condition (its ``when``), decided from what a test observed.

A rule such as "after the device sets DEVICE_NEEDS_RESET, it MUST notify"
applies only once its condition held. ``unmet`` reads the condition clauses
this runner understands (features negotiated or not, features offered,
DRIVER_OK set, DEVICE_NEEDS_RESET set by the device) and returns the first
that did not hold in the test; clauses it cannot read are taken as held,
so an unread condition never turns a verdict into a SKIP.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from device_ref.virtio_constants import DRIVER_OK

from conformance import names

_FEATURE = re.compile(r"@feature\(([A-Z0-9_]+)\)")


@dataclass(frozen=True)
class Observations:
    """What a test saw of the device, as far as conditions ask."""

    device_type: str
    negotiated: int
    offered: int | None            # None: could not be read (device gone)
    driver_status: int
    needs_reset_seen: bool


def unmet(condition: str, seen: Observations) -> str | None:
    """The first clause of ``condition`` that did not hold, or None."""
    text = " ".join(condition.split())
    both = re.fullmatch(r"both (.*) ha(?:ve|s) been negotiated", text)
    clauses = [f"@feature({f}) has been negotiated" for f in _FEATURE.findall(both.group(1))] \
        if both else re.split(r"\band\b(?! @feature\([^)]*\) (?:is|are) not\b)", text)
    for clause in (c.strip() for c in clauses):
        if not clause:
            continue
        held = _holds(clause, seen)
        if held is False:
            return _plain(clause)
    return None


def _plain(clause: str) -> str:
    return _FEATURE.sub(lambda m: m.group(1), clause)


def _holds(clause: str, seen: Observations) -> bool | None:
    feats = _FEATURE.findall(clause)
    if "DEVICE_NEEDS_RESET" in clause and "device has set" in clause:
        return seen.needs_reset_seen
    if re.fullmatch(r"DRIVER_OK is set", clause):
        return bool(seen.driver_status & DRIVER_OK)
    if len(feats) != 1:
        return None
    bit = names.feature_bit(feats[0], seen.device_type)
    if bit is None:
        return None
    if re.search(r"\b(?:has|is|have|are) not been negotiated$|\bis not negotiated$", clause):
        return not seen.negotiated >> bit & 1
    if re.search(r"\b(?:has|have) been negotiated$|\b(?:is|are) negotiated$", clause):
        return bool(seen.negotiated >> bit & 1)
    if re.fullmatch(r"the device offers @feature\([A-Z0-9_]+\)", clause):
        return None if seen.offered is None else bool(seen.offered >> bit & 1)
    return None
