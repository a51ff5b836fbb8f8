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


def resume_queue(device: object, queue: int, base: int, packed: bool) -> None:
    """Re-open a started queue of the device model at ``base``.

    The device model opens its rings at the initial position; a vhost-user
    back-end must continue where the front-end says (after SET_MEM_TABLE
    while running, or a stop and start without a reset).
    """
    from device_ref.device.device_queue import DeviceQueue, ring_config
    from device_ref.ring import DeviceQueue as RingDeviceQueue

    qs = device.queues[queue]  # type: ignore[attr-defined]
    if qs.ring is None or qs.config is None:
        return
    memory = qs.ring.memory
    core = RingDeviceQueue(memory, ring_config(qs.config, device.negotiated),  # type: ignore[attr-defined]
                           start=ring_start(base, packed))
    qs.ring = DeviceQueue(memory, core, qs.config.size)
