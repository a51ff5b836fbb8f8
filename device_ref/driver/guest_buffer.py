"""A caller-owned range of guest RAM, shared by the driver and its buffer layers."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class GuestBuffer:
    """A caller-owned range of ordinary guest RAM (from ``VirtioDriver.alloc_guest``)."""
    addr: int
    length: int
