"""Names the vectors use, mapped to numbers (facts from virtio v1.4 and the
SWIOTLB proposal carried by this project)."""
from __future__ import annotations

# Device-independent feature bits.
GENERIC_FEATURES = {
    "VIRTIO_F_NOTIFY_ON_EMPTY": 24, "VIRTIO_F_ANY_LAYOUT": 27, "VIRTIO_F_INDIRECT_DESC": 28,
    "VIRTIO_F_EVENT_IDX": 29, "VIRTIO_F_VERSION_1": 32, "VIRTIO_F_ACCESS_PLATFORM": 33,
    "VIRTIO_F_RING_PACKED": 34, "VIRTIO_F_IN_ORDER": 35, "VIRTIO_F_ORDER_PLATFORM": 36,
    "VIRTIO_F_SR_IOV": 37, "VIRTIO_F_NOTIFICATION_DATA": 38, "VIRTIO_F_NOTIF_CONFIG_DATA": 39,
    "VIRTIO_F_RING_RESET": 40, "VIRTIO_F_ADMIN_VQ": 41, "VIRTIO_F_SUSPEND": 43,
    "VIRTIO_F_SWIOTLB": 44,
    "VIRTIO_F_QUEUE_ENCRYPTION": 45,   # experimental, spec/queue_encryption.vspec
    # also spelled without the VIRTIO_ prefix in some texts
    "VIRTIO_RING_F_INDIRECT_DESC": 28, "VIRTIO_RING_F_EVENT_IDX": 29,
}
# Device-type feature bits, by device type.
TYPE_FEATURES = {
    "blk": {"VIRTIO_BLK_F_SIZE_MAX": 1, "VIRTIO_BLK_F_SEG_MAX": 2, "VIRTIO_BLK_F_GEOMETRY": 4,
            "VIRTIO_BLK_F_RO": 5, "VIRTIO_BLK_F_BLK_SIZE": 6, "VIRTIO_BLK_F_FLUSH": 9,
            "VIRTIO_BLK_F_TOPOLOGY": 10, "VIRTIO_BLK_F_CONFIG_WCE": 11, "VIRTIO_BLK_F_MQ": 12,
            "VIRTIO_BLK_F_DISCARD": 13, "VIRTIO_BLK_F_WRITE_ZEROES": 14,
            "VIRTIO_BLK_F_LIFETIME": 15, "VIRTIO_BLK_F_SECURE_ERASE": 16},
    "rng": {},
    "fs": {"VIRTIO_FS_F_NOTIFICATION": 0},
}

STATUS_BITS = {"ACKNOWLEDGE": 1, "DRIVER": 2, "DRIVER_OK": 4, "FEATURES_OK": 8,
               "SUSPEND": 16, "DEVICE_NEEDS_RESET": 64, "FAILED": 128}

DEVICE_IDS = {"net": 1, "blk": 2, "console": 3, "rng": 4, "balloon": 5, "scsi": 8, "9p": 9,
              "gpu": 16, "input": 18, "vsock": 19, "crypto": 20, "fs": 26}

BLK_STATUS = {"OK": 0, "IOERR": 1, "UNSUPP": 2}

# struct virtio_blk_config: field -> (offset, size)
BLK_CONFIG = {"capacity": (0, 8), "size_max": (8, 4), "seg_max": (12, 4),
              "geometry.cylinders": (16, 2), "geometry.heads": (18, 1),
              "geometry.sectors": (19, 1), "blk_size": (20, 4),
              "topology.physical_block_exp": (24, 1), "topology.alignment_offset": (25, 1),
              "topology.min_io_size": (26, 2), "topology.opt_io_size": (28, 4),
              "writeback": (32, 1), "unused0": (33, 1), "num_queues": (34, 2),
              "max_discard_sectors": (36, 4), "max_discard_seg": (40, 4),
              "discard_sector_alignment": (44, 4), "max_write_zeroes_sectors": (48, 4),
              "max_write_zeroes_seg": (52, 4), "write_zeroes_may_unmap": (56, 1),
              "unused1": (57, 3), "max_secure_erase_sectors": (60, 4),
              "max_secure_erase_seg": (64, 4), "secure_erase_sector_alignment": (68, 4)}
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
