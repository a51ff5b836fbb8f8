"""What the base release (virtio v1.4-cs01) already assigns: feature bits,
allocation ranges, numbered constants, section and normative labels, field
names.  The semantic checks compare modules against these tables.

The device-independent bits and ranges are written out here from the
specification's allocation list and Reserved Feature Bits chapter; the
labels, field names and device-type bits come from the generated index
``data/virtio-v1.4-cs01.json`` (see ``data/build_index.py``).
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

BASE = "virtio-v1.4-cs01"


@dataclass(frozen=True)
class KnownBit:
    bit: int
    name: str
    legacy: bool = False


# Device-independent bits assigned in v1.4-cs01 (legacy ones included: a
# transitional device still offers them, so reusing them collides).
DEVICE_INDEPENDENT_BITS: dict[int, KnownBit] = {b.bit: b for b in (
    KnownBit(24, "VIRTIO_F_NOTIFY_ON_EMPTY", legacy=True),
    KnownBit(27, "VIRTIO_F_ANY_LAYOUT", legacy=True),
    KnownBit(28, "VIRTIO_F_INDIRECT_DESC"),
    KnownBit(29, "VIRTIO_F_EVENT_IDX"),
    KnownBit(30, "UNUSED", legacy=True),
    KnownBit(32, "VIRTIO_F_VERSION_1"),
    KnownBit(33, "VIRTIO_F_ACCESS_PLATFORM"),
    KnownBit(34, "VIRTIO_F_RING_PACKED"),
    KnownBit(35, "VIRTIO_F_IN_ORDER"),
    KnownBit(36, "VIRTIO_F_ORDER_PLATFORM"),
    KnownBit(37, "VIRTIO_F_SR_IOV"),
    KnownBit(38, "VIRTIO_F_NOTIFICATION_DATA"),
    KnownBit(39, "VIRTIO_F_NOTIF_CONFIG_DATA"),
    KnownBit(40, "VIRTIO_F_RING_RESET"),
    KnownBit(41, "VIRTIO_F_ADMIN_VQ"),
    KnownBit(43, "VIRTIO_F_SUSPEND"),
)}


def _ranges(*spans: tuple[int, int | None]) -> tuple[tuple[int, int | None], ...]:
    return spans


# The allocation list of v1.4-cs01 (None: no upper end).
DEVICE_TYPE_RANGES = _ranges((0, 23), (41, 42), (50, 127))
EXTENSION_RANGES = _ranges((24, 40), (43, 43))
FUTURE_RANGES = _ranges((44, 49), (128, None))
# A new device-independent feature takes a bit from the extension ranges or,
# moving it out of the future list, from the future ranges.
DEVICE_INDEPENDENT_RANGES = EXTENSION_RANGES + FUTURE_RANGES

# Device types are named as the upstream device-types/ directories;
# common short names map onto them.
DEVICE_TYPE_SYNONYMS = {"rng": "entropy", "block": "blk", "network": "net",
                        "balloon": "balloon", "vsock": "vsock", "fs": "fs"}

# Numbered constants assigned upstream, by group.
CONSTANT_GROUPS: dict[str, dict[int, str]] = {
    "pci-cfg-type": {
        1: "VIRTIO_PCI_CAP_COMMON_CFG", 2: "VIRTIO_PCI_CAP_NOTIFY_CFG",
        3: "VIRTIO_PCI_CAP_ISR_CFG", 4: "VIRTIO_PCI_CAP_DEVICE_CFG",
        5: "VIRTIO_PCI_CAP_PCI_CFG", 8: "VIRTIO_PCI_CAP_SHARED_MEMORY_CFG",
        9: "VIRTIO_PCI_CAP_VENDOR_CFG",
    },
}
CONSTANT_GROUP_LIMITS = {"pci-cfg-type": (0, 255)}


def in_ranges(bit: int, ranges) -> bool:
    return any(lo <= bit and (hi is None or bit <= hi) for lo, hi in ranges)


def describe_ranges(ranges) -> str:
    parts = []
    for lo, hi in ranges:
        parts.append(f"{lo} and above" if hi is None else (str(lo) if lo == hi else f"{lo} to {hi}"))
    return ", ".join(parts)


def canonical_device_type(scope: str) -> str:
    return DEVICE_TYPE_SYNONYMS.get(scope, scope)


@dataclass(frozen=True)
class UpstreamIndex:
    labels: frozenset[str]
    fields: frozenset[str]
    device_bits: dict[str, dict[str, int]]      # device type -> name -> bit
    files: frozenset[str] = frozenset()

    @property
    def device_types(self) -> frozenset[str]:
        return frozenset(self.device_bits)

    def feature_names(self) -> frozenset[str]:
        names = {b.name for b in DEVICE_INDEPENDENT_BITS.values()}
        for bits in self.device_bits.values():
            names.update(bits)
        return frozenset(names)


@lru_cache(maxsize=1)
def upstream() -> UpstreamIndex:
    path = Path(__file__).with_name("data") / f"{BASE}.json"
    data = json.loads(path.read_text(encoding="utf-8"))
    return UpstreamIndex(frozenset(data["labels"]), frozenset(data["fields"]),
                         {k: dict(v) for k, v in data["device_feature_bits"].items()},
                         frozenset(data.get("files", ())))
