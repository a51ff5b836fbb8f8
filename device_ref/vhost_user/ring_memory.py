"""Glue between the back-end's mapped regions and the ring core / device model."""
from __future__ import annotations

from device_ref.ring.memory import GuestMemory
from device_ref.vhost_user.memory import RegionTable


def ring_memory(table: RegionTable) -> GuestMemory:
    """A ring-core memory map holding exactly the shared regions, no more."""
    memory = GuestMemory()
    for r in table.regions:
        memory.add_region(r.guest_addr, r.view())
    return memory


def ring_position(device: object, queue: int, packed: bool) -> int:
    """The GET_VRING_BASE value for a running queue of a device model.

    Split rings: the next available index the device will read. Packed
    rings: bits 0-14 that index and bit 15 its wrap counter, repeated in
    bits 16-31 for the used side, which equals it here because this device
    completes every request before it reads the next kick.
    """
    dq = device.queues[queue].ring  # type: ignore[attr-defined]
    if dq is None:
        return 0
    core = getattr(dq, "ring", dq)  # the device model wraps the ring-core queue
    state = int(core.state)
    if not packed:
        return state & 0xFFFF
    return (state & 0xFFFF) | (state & 0xFFFF) << 16
