"""The device's side of one virtqueue, built on the ring core.

This is the only place the device model meets ``device_ref.ring``: it turns
a transport ``QueueConfig`` plus the negotiated features into a ring-core
device queue over the memory map the transport handed the device, and
moves popped chains and used lengths in batches.
"""
from __future__ import annotations

from device_ref.device.features import F_EVENT_IDX, F_IN_ORDER, F_INDIRECT_DESC, F_RING_PACKED, has
from device_ref.ring import DeviceQueue as RingDeviceQueue
from device_ref.ring.backend import pair_loops
from device_ref.ring.batch import Chain, PopBatch
from device_ref.ring.errors import RingError
from device_ref.ring.layout import PACKED, SPLIT
from device_ref.ring.layout import QueueConfig as RingQueueConfig
from device_ref.ring.memory import GuestMemory as MemoryMap
from device_ref.transport import QueueConfig

RingFault = RingError
BATCH = 64


def build_memory_map(regions) -> MemoryMap:
    """A ring-core memory map over ``guest_ram.Region``-like objects (base, buffer.view)."""
    m = MemoryMap()
    for r in regions:
        m.add_region(r.base, r.buffer.view)
    return m


def ring_config(cfg: QueueConfig, negotiated: int) -> RingQueueConfig:
    return RingQueueConfig(PACKED if has(negotiated, F_RING_PACKED) else SPLIT, cfg.size,
                           cfg.desc, cfg.driver, cfg.device,
                           event_idx=has(negotiated, F_EVENT_IDX),
                           indirect=has(negotiated, F_INDIRECT_DESC),
                           in_order=has(negotiated, F_IN_ORDER))


class DeviceQueue:
    def __init__(self, memory: MemoryMap, ring, size: int, batch: int | None = None) -> None:
        self.memory = memory
        self.ring = ring
        self.batch = PopBatch(min(batch or BATCH, size), size)
        # the C loop over one-readable, one-writable chains (None: Python's)
        self.loops = pair_loops() if isinstance(memory, MemoryMap) else None

    def pop(self) -> list[Chain]:
        """The next chains the driver made available (raises RingError)."""
        if self.ring.pop_batch(self.batch) == 0:
            return []
        return self.batch.chain_list()

    def pop_records(self) -> int:
        """Like ``pop``, but leaves the chains as records in ``batch`` (its
        ``chains`` and ``segs`` buffers) and returns how many there are."""
        return self.ring.pop_batch(self.batch)

    def set_written(self, index: int, written: int) -> None:
        """Bytes the device wrote into the ``index``-th chain of the last pop."""
        self.batch.set_written(index, written)

    def pop_one(self) -> Chain | None:
        """The next available chain alone, or None, for a device that holds
        buffers until it has something to put in them (net's receiveq1)."""
        return self.ring.pop()

    def push_used(self, items: list[tuple[int, int]]) -> bool:
        """Use the chains ``items`` names, (id, bytes written) each, together;
        True if the driver wants an interrupt."""
        return self.ring.push_many(items)

    def rearm(self) -> bool:
        """Ask for the next kick; True if buffers arrived meanwhile (pop again)."""
        return self.ring.enable_notifications()

    def push(self, coalesce: bool = False) -> bool:
        """Publish used entries for everything popped (one entry for the
        batch when ``coalesce``, IN_ORDER only); True if the driver wants an interrupt."""
        return self.ring.push_batch(self.batch, coalesce=coalesce)


def open_device_queue(memory: MemoryMap, cfg: QueueConfig, negotiated: int,
                      start: int | None = None, backend: str | None = None,
                      batch: int | None = None) -> DeviceQueue:
    """Raises RingError when the rings do not lie inside ``memory``; ``batch``:
    the most chains one pop takes (default BATCH)."""
    ring = RingDeviceQueue(memory, ring_config(cfg, negotiated), start=start, backend=backend)
    return DeviceQueue(memory, ring, cfg.size, batch)
