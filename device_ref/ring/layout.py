"""Ring layouts: flag values, area sizes and alignments, queue configuration."""
from __future__ import annotations

from dataclasses import dataclass

from .errors import RingError, RingErrorCode

# descriptor flags (both layouts)
DESC_F_NEXT = 1
DESC_F_WRITE = 2
DESC_F_INDIRECT = 4
# packed only: availability bits
DESC_F_AVAIL = 1 << 7
DESC_F_USED = 1 << 15
# split: avail ring flags / used ring flags
AVAIL_F_NO_INTERRUPT = 1
USED_F_NO_NOTIFY = 1
# packed event suppression flags
EVENT_FLAGS_ENABLE = 0
EVENT_FLAGS_DISABLE = 1
EVENT_FLAGS_DESC = 2

DESC_SIZE = 16
MAX_QUEUE_SIZE = 32768

SPLIT = "split"
PACKED = "packed"


@dataclass(frozen=True)
class AreaSpec:
    """Bytes and alignment one ring area needs."""
    size: int
    align: int


@dataclass(frozen=True)
class RingAreas:
    desc: AreaSpec     # descriptor table / descriptor ring
    driver: AreaSpec   # split: available ring; packed: driver event suppression
    device: AreaSpec   # split: used ring; packed: device event suppression


def ring_areas(layout: str, size: int) -> RingAreas:
    """Sizes and alignments of the three areas of a queue of `size` entries.

    Split sizes include the trailing used_event / avail_event words, which
    exist in memory whether or not VIRTIO_F_EVENT_IDX is negotiated.
    """
    check_size(layout, size)
    if layout == SPLIT:
        return RingAreas(AreaSpec(DESC_SIZE * size, 16),
                         AreaSpec(6 + 2 * size, 2),
                         AreaSpec(6 + 8 * size, 4))
    return RingAreas(AreaSpec(DESC_SIZE * size, 16), AreaSpec(4, 4), AreaSpec(4, 4))


def check_size(layout: str, size: int) -> None:
    if layout not in (SPLIT, PACKED):
        raise RingError(RingErrorCode.BAD_CONFIG, f"layout {layout!r}")
    if not 1 <= size <= MAX_QUEUE_SIZE:
        raise RingError(RingErrorCode.BAD_CONFIG, f"queue size {size}")
    if layout == SPLIT and size & (size - 1):
        raise RingError(RingErrorCode.BAD_CONFIG, f"split queue size {size} is not a power of 2")


@dataclass(frozen=True)
class QueueConfig:
    """Everything both sides agree on for one virtqueue."""
    layout: str
    size: int
    desc: int            # guest address of the descriptor table / ring
    driver: int          # guest address of the driver area
    device: int          # guest address of the device area
    event_idx: bool = False
    indirect: bool = False
    in_order: bool = False

    def validate(self) -> RingAreas:
        areas = ring_areas(self.layout, self.size)
        for name, spec in (("desc", areas.desc), ("driver", areas.driver), ("device", areas.device)):
            addr = getattr(self, name)
            if addr < 0 or addr % spec.align:
                raise RingError(RingErrorCode.BAD_CONFIG, f"{name} area 0x{addr:x} not aligned to {spec.align}")
        return areas


def place_rings(layout: str, size: int, base: int, *, event_idx: bool = False,
                indirect: bool = False, in_order: bool = False) -> QueueConfig:
    """Lay the three areas out one after another from `base`, aligned."""
    areas = ring_areas(layout, size)
    addr = base
    out = []
    for spec in (areas.desc, areas.driver, areas.device):
        addr = (addr + spec.align - 1) // spec.align * spec.align
        out.append(addr)
        addr += spec.size
    return QueueConfig(layout, size, out[0], out[1], out[2], event_idx, indirect, in_order)


def rings_end(cfg: QueueConfig) -> int:
    """First guest address after the three areas of `cfg` (for sizing memory)."""
    areas = ring_areas(cfg.layout, cfg.size)
    return max(cfg.desc + areas.desc.size, cfg.driver + areas.driver.size, cfg.device + areas.device.size)
