"""Helpers over feature and status bits (the numbers live in
``device_ref.virtio_constants``); the rules that use them live in ``negotiation.py`` and the
device types.
"""
from __future__ import annotations

from device_ref.virtio_constants import (  # noqa: F401 - re-exported for the device side
    ACKNOWLEDGE, DEVICE_NEEDS_RESET, DRIVER, DRIVER_OK, F_ACCESS_PLATFORM, F_ADMIN_VQ, F_EVENT_IDX,
    F_IN_ORDER, F_INDIRECT_DESC, F_NOTIFICATION_DATA, F_ORDER_PLATFORM, F_RING_PACKED,
    F_RING_RESET, F_SUSPEND, F_SWIOTLB, F_VERSION_1, FAILED, FEATURES_OK, ID_BLOCK, ID_ENTROPY,
    SUSPEND)


def bit(n: int) -> int:
    """The mask of feature bit ``n``."""
    return 1 << n


def has(features: int, n: int) -> bool:
    return bool(features >> n & 1)


def names(features: int, device_bits: dict[int, str] | None = None) -> list[str]:
    """Readable names of the bits set in ``features`` (device-type bits from ``device_bits``)."""
    table = {F_INDIRECT_DESC: "INDIRECT_DESC", F_EVENT_IDX: "EVENT_IDX",
             F_VERSION_1: "VERSION_1", F_ACCESS_PLATFORM: "ACCESS_PLATFORM",
             F_RING_PACKED: "RING_PACKED", F_IN_ORDER: "IN_ORDER",
             F_ORDER_PLATFORM: "ORDER_PLATFORM",
             F_NOTIFICATION_DATA: "NOTIFICATION_DATA", F_RING_RESET: "RING_RESET", F_ADMIN_VQ: "ADMIN_VQ",
             F_SWIOTLB: "SWIOTLB", **(device_bits or {})}
    out = []
    n = 0
    while features >> n:
        if features >> n & 1:
            out.append(table.get(n, f"bit{n}"))
        n += 1
    return out


def status_names(status: int) -> str:
    parts = [name for value, name in ((ACKNOWLEDGE, "ACKNOWLEDGE"), (DRIVER, "DRIVER"),
                                      (FEATURES_OK, "FEATURES_OK"), (DRIVER_OK, "DRIVER_OK"),
                                      (DEVICE_NEEDS_RESET, "NEEDS_RESET"), (FAILED, "FAILED"))
             if status & value]
    return "|".join(parts) if parts else "0"
