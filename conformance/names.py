"""Names the vectors use, mapped to the numbers of ``device_ref.virtio_constants``."""
from __future__ import annotations

from device_ref.virtio_constants import (BLK_CONFIG, BLK_FEATURES, BLK_STATUS,  # noqa: F401
                                         DEVICE_IDS, FEATURE_ALIASES, FS_FEATURES,
                                         GENERIC_FEATURES, STATUS_BITS)

GENERIC_FEATURES = {**GENERIC_FEATURES, **FEATURE_ALIASES}
# Device-type feature bits, by device type.
TYPE_FEATURES = {"blk": BLK_FEATURES, "rng": {}, "fs": FS_FEATURES}
CONFIG_FIELDS = {"blk": BLK_CONFIG, "rng": {}}


def feature_bit(name: str, device_type: str | None) -> int | None:
    """The bit of a feature name, or None when this runner does not know it."""
    if name in GENERIC_FEATURES:
        return GENERIC_FEATURES[name]
    if name.startswith("BIT") and name[3:].isdigit():
        return int(name[3:])
    for dtype, table in TYPE_FEATURES.items():
        if name in table and (device_type in (None, dtype)):
            return table[name]
    return None


def feature_names(mask: int, device_type: str | None = None) -> list[str]:
    rev = {v: k for k, v in GENERIC_FEATURES.items() if k.startswith("VIRTIO_F_")}
    rev.update({v: k for k, v in TYPE_FEATURES.get(device_type or "", {}).items()})
    return [rev.get(b, f"bit{b}") for b in range(128) if mask >> b & 1]


def status_text(status: int) -> str:
    names = [n for n, v in STATUS_BITS.items() if status & v]
    return "|".join(names) if names else "0"
