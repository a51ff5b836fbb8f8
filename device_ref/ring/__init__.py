"""Virtqueue ring core: split and packed rings, driver and device sides.

Two backends with one interface: a C core built by cffi at install time and
a pure-Python twin.  `DEVICE_REF_RING=python|c` forces one; each queue
constructor also takes `backend=`.  See docs/ring.md.
"""
from .backend import ENV_VAR, available_backends, c_available, default_backend
from .batch import Chain, ChainBatch, PopBatch, PushBatch, Segment, UsedBatch
from .errors import RingError, RingErrorCode
from .layout import (AVAIL_F_NO_INTERRUPT, DESC_F_AVAIL, DESC_F_INDIRECT, DESC_F_NEXT,
                     DESC_F_USED, DESC_F_WRITE, EVENT_FLAGS_DESC, EVENT_FLAGS_DISABLE,
                     EVENT_FLAGS_ENABLE, PACKED, SPLIT, USED_F_NO_NOTIFY, AreaSpec,
                     QueueConfig, RingAreas, place_rings, ring_areas, rings_end)
from .memory import GuestMemory, Region
from .queue import DeviceQueue, DriverQueue

__all__ = [
    "ENV_VAR", "available_backends", "c_available", "default_backend",
    "Chain", "ChainBatch", "PopBatch", "PushBatch", "Segment", "UsedBatch",
    "RingError", "RingErrorCode",
    "AVAIL_F_NO_INTERRUPT", "DESC_F_AVAIL", "DESC_F_INDIRECT", "DESC_F_NEXT", "DESC_F_USED",
    "DESC_F_WRITE", "EVENT_FLAGS_DESC", "EVENT_FLAGS_DISABLE", "EVENT_FLAGS_ENABLE",
    "PACKED", "SPLIT", "USED_F_NO_NOTIFY", "AreaSpec", "QueueConfig", "RingAreas",
    "place_rings", "ring_areas", "rings_end",
    "GuestMemory", "Region", "DeviceQueue", "DriverQueue",
]
