"""Register layouts of the virtio PCI and MMIO transports (facts from virtio v1.4).

Numbers only, kept in one place for the transports in this package.
"""
from __future__ import annotations

# -- PCI configuration space (type 0 header) --------------------------------
PCI_VENDOR_ID = 0x00          # le16
PCI_DEVICE_ID = 0x02          # le16
PCI_COMMAND = 0x04            # le16
PCI_STATUS = 0x06             # le16
PCI_REVISION = 0x08           # u8
PCI_BAR0 = 0x10               # six le32 BARs
PCI_SUBSYSTEM_ID = 0x2E       # le16
PCI_CAP_PTR = 0x34            # u8
PCI_COMMAND_MEMORY = 1 << 1
PCI_COMMAND_MASTER = 1 << 2
PCI_COMMAND_INTX_DISABLE = 1 << 10
PCI_STATUS_CAP_LIST = 1 << 4
PCI_BAR_IO = 1
PCI_BAR_TYPE_64 = 0x4         # bits 2:1 == 2
PCI_BAR_MEM_MASK = ~0xF

PCI_CAP_ID_MSIX = 0x11
PCI_CAP_ID_VNDR = 0x09

# MSI-X capability: message control, table and pending-bit-array locations.
MSIX_CONTROL = 2              # le16, from the capability start
MSIX_TABLE = 4                # le32: offset | BIR (low 3 bits)
MSIX_PBA = 8
MSIX_CONTROL_ENABLE = 1 << 15
MSIX_CONTROL_MASKALL = 1 << 14
MSIX_TABLE_SIZE_MASK = 0x7FF
MSIX_ENTRY_SIZE = 16          # addr lo, addr hi, data, vector control
MSIX_ENTRY_MASKED = 1
NO_VECTOR = 0xFFFF

# -- virtio PCI ---------------------------------------------------------------
VIRTIO_PCI_VENDOR = 0x1AF4
VIRTIO_PCI_MODERN_BASE = 0x1040   # device id = 0x1040 + virtio device type
VIRTIO_PCI_TRANSITIONAL = range(0x1000, 0x1040)   # type in the subsystem id

# cfg_type of struct virtio_pci_cap
CAP_COMMON = 1
CAP_NOTIFY = 2
CAP_ISR = 3
CAP_DEVICE = 4
CAP_PCI_CFG = 5
CAP_SHARED_MEMORY = 8
CAP_VENDOR = 9
CAP_NAMES = {CAP_COMMON: "common", CAP_NOTIFY: "notify", CAP_ISR: "isr", CAP_DEVICE: "device",
             CAP_PCI_CFG: "pci-cfg", CAP_SHARED_MEMORY: "shared-memory", CAP_VENDOR: "vendor"}
CAP_NOTIFY_MULTIPLIER = 16    # le32 after struct virtio_pci_cap

# struct virtio_pci_common_cfg: field -> (offset, width)
COMMON = {
    "device_feature_select": (0x00, 4), "device_feature": (0x04, 4),
    "driver_feature_select": (0x08, 4), "driver_feature": (0x0C, 4),
    "config_msix_vector": (0x10, 2), "num_queues": (0x12, 2),
    "device_status": (0x14, 1), "config_generation": (0x15, 1),
    "queue_select": (0x16, 2), "queue_size": (0x18, 2),
    "queue_msix_vector": (0x1A, 2), "queue_enable": (0x1C, 2),
    "queue_notify_off": (0x1E, 2),
    "queue_desc_lo": (0x20, 4), "queue_desc_hi": (0x24, 4),
    "queue_driver_lo": (0x28, 4), "queue_driver_hi": (0x2C, 4),
    "queue_device_lo": (0x30, 4), "queue_device_hi": (0x34, 4),
    "queue_notify_data": (0x38, 2), "queue_reset": (0x3A, 2),
}
COMMON_MIN_LENGTH = 0x38      # up to queue_device: what a v1.0 device provides

ISR_QUEUE = 1
ISR_CONFIG = 2

# -- virtio MMIO --------------------------------------------------------------
MMIO_MAGIC_VALUE = 0x74726976     # "virt", little-endian
MMIO = {
    "magic": 0x000, "version": 0x004, "device_id": 0x008, "vendor_id": 0x00C,
    "device_features": 0x010, "device_features_sel": 0x014,
    "driver_features": 0x020, "driver_features_sel": 0x024,
    "guest_page_size": 0x028,     # legacy only
    "queue_sel": 0x030, "queue_num_max": 0x034, "queue_num": 0x038,
    "queue_align": 0x03C,         # legacy only
    "queue_pfn": 0x040,           # legacy only
    "queue_ready": 0x044,
    "queue_notify": 0x050,
    "interrupt_status": 0x060, "interrupt_ack": 0x064,
    "status": 0x070,
    "queue_desc_low": 0x080, "queue_desc_high": 0x084,
    "queue_driver_low": 0x090, "queue_driver_high": 0x094,
    "queue_device_low": 0x0A0, "queue_device_high": 0x0A4,
    "shm_sel": 0x0AC, "shm_len_low": 0x0B0, "shm_len_high": 0x0B4,
    "shm_base_low": 0x0B8, "shm_base_high": 0x0BC,
    "queue_reset": 0x0C0,
    "config_generation": 0x0FC,
}
MMIO_CONFIG = 0x100
MMIO_INT_VRING = 1
MMIO_INT_CONFIG = 2
MMIO_LEGACY_PAGE = 4096           # what this driver writes to GuestPageSize and QueueAlign
