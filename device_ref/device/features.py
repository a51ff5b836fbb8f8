"""Feature bit numbers and the device-status bits (facts from virtio v1.4).

Numbers only; the rules that use them live in ``negotiation.py`` and the
device types.
"""
from __future__ import annotations

# Device status bits.
ACKNOWLEDGE = 1
DRIVER = 2
DRIVER_OK = 4
FEATURES_OK = 8
DEVICE_NEEDS_RESET = 64
FAILED = 128

# Device-independent feature bits.
F_INDIRECT_DESC = 28
F_EVENT_IDX = 29
F_VERSION_1 = 32
F_ACCESS_PLATFORM = 33
F_RING_PACKED = 34
F_IN_ORDER = 35
F_ORDER_PLATFORM = 36
F_NOTIFICATION_DATA = 38
F_RING_RESET = 40
# The proposal this project carries: first bit of the "future extensions" range.
F_SWIOTLB = 44

# Device ids.
ID_BLOCK = 2
ID_ENTROPY = 4


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
             F_NOTIFICATION_DATA: "NOTIFICATION_DATA", F_RING_RESET: "RING_RESET",
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
