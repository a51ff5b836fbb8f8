"""Glue between the back-end's mapped regions and the ring core / device model."""
from __future__ import annotations

from device_ref.ring.memory import GuestMemory
from device_ref.vhost_user.memory import RegionTable


def ring_memory(table: RegionTable) -> GuestMemory:
    """A ring-core memory map holding exactly the shared regions, no more."""
    memory = GuestMemory()
    for r in table.regions:
        memory.add_region(r.guest_addr, r.buffer())
    return memory


def ring_start(base: int, packed: bool) -> int:
    """The ring-core start position for a SET_VRING_BASE value.

    Packed: bits 0-15 are the available index and its wrap counter; a base
    with index 0 and wrap 0 is what some front-ends send for a fresh ring
    (the wrap counters start at 1), so it is read as the fresh position.
    """
    if not packed:
        return base & 0xFFFF
    low = base & 0xFFFF
    return 0x8000 if low == 0 else low
