"""Names the vectors use, mapped to the numbers of ``device_ref.virtio_constants``."""
from __future__ import annotations

from device_ref import device_types
from device_ref.device_types import DeviceType
from device_ref.virtio_constants import (BALLOON_CONFIG, BLK_CONFIG, BLK_FEATURES,  # noqa: F401
                                         BLK_STATUS, CONSOLE_CONFIG, FEATURE_ALIASES,
                                         FS_FEATURES, GENERIC_FEATURES, GPU_CONFIG,
                                         INPUT_CONFIG, NET_CONFIG, SCSI_CONFIG, STATUS_BITS)

GENERIC_FEATURES = {**GENERIC_FEATURES, **FEATURE_ALIASES}
# Device-type feature bits, by device type.
TYPE_FEATURES = {"blk": BLK_FEATURES, "rng": {}, "fs": FS_FEATURES}
CONFIG_FIELDS = {"blk": BLK_CONFIG, "rng": {}, "net": NET_CONFIG, "console": CONSOLE_CONFIG,
                 "balloon": BALLOON_CONFIG, "scsi": SCSI_CONFIG, "gpu": GPU_CONFIG,
                 "input": INPUT_CONFIG}


def _kind(device_type: str | None) -> DeviceType | None:
    try:
        return device_types.device_type(device_type) if device_type else None
    except device_types.UnknownDeviceType:
        return None


def feature_bit(name: str, device_type: str | None) -> int | None:
    """The bit of a feature name, or None when this runner does not know it."""
    if name in GENERIC_FEATURES:
        return GENERIC_FEATURES[name]
    if name.startswith("BIT") and name[3:].isdigit():
        return int(name[3:])
    for dtype, table in TYPE_FEATURES.items():
        if name in table and (device_type in (None, dtype)):
            return table[name]
    kind = _kind(device_type)
    return kind.feature_bit(name) if kind is not None else None


def feature_names(mask: int, device_type: str | None = None) -> list[str]:
    """Names of the bits in ``mask``: the device type's names (device_types data), else
    the device-independent ones, else ``bitN``."""
    kind = _kind(device_type)
    if kind is not None:
        return kind.feature_names(mask)
    return [device_types.independent_feature_name(b) for b in range(mask.bit_length())
            if mask >> b & 1]


def status_text(status: int) -> str:
    names = [n for n, v in STATUS_BITS.items() if status & v]
    return "|".join(names) if names else "0"
