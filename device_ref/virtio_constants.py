"""The numbers of virtio the runtime uses, in one place.

Facts from virtio v1.4 (device status bits, device-independent feature
bits, the ids of the devices implemented here, the block device's feature bits, request types, status
values and configuration offsets) plus the bits of the two proposals this
project carries. Devices, the driver, vhost-user and the conformance runner
import them from here; ``specc`` keeps its own table (it never imports the
runtime).
"""
from __future__ import annotations

# Device status bits.
ACKNOWLEDGE = 1
DRIVER = 2
DRIVER_OK = 4
FEATURES_OK = 8
SUSPEND = 16
DEVICE_NEEDS_RESET = 64
FAILED = 128

STATUS_BITS = {"ACKNOWLEDGE": ACKNOWLEDGE, "DRIVER": DRIVER, "DRIVER_OK": DRIVER_OK,
               "FEATURES_OK": FEATURES_OK, "SUSPEND": SUSPEND,
               "DEVICE_NEEDS_RESET": DEVICE_NEEDS_RESET, "FAILED": FAILED}

# Device-independent feature bits.
F_NOTIFY_ON_EMPTY = 24
F_ANY_LAYOUT = 27
F_INDIRECT_DESC = 28
F_EVENT_IDX = 29
F_VERSION_1 = 32
F_ACCESS_PLATFORM = 33
F_RING_PACKED = 34
F_IN_ORDER = 35
F_ORDER_PLATFORM = 36
F_SR_IOV = 37
F_NOTIFICATION_DATA = 38
F_NOTIF_CONFIG_DATA = 39
F_RING_RESET = 40
F_ADMIN_VQ = 41
F_SUSPEND = 43
# The proposal this project carries: first bit of the "future extensions" range.
F_SWIOTLB = 44
# The counter-proposal (spec/queue_encryption.vspec): the bit left free after SWIOTLB; not assigned by OASIS.
F_QUEUE_ENCRYPTION = 45

GENERIC_FEATURES = {
    "VIRTIO_F_NOTIFY_ON_EMPTY": F_NOTIFY_ON_EMPTY, "VIRTIO_F_ANY_LAYOUT": F_ANY_LAYOUT,
    "VIRTIO_F_INDIRECT_DESC": F_INDIRECT_DESC, "VIRTIO_F_EVENT_IDX": F_EVENT_IDX,
    "VIRTIO_F_VERSION_1": F_VERSION_1, "VIRTIO_F_ACCESS_PLATFORM": F_ACCESS_PLATFORM,
    "VIRTIO_F_RING_PACKED": F_RING_PACKED, "VIRTIO_F_IN_ORDER": F_IN_ORDER,
    "VIRTIO_F_ORDER_PLATFORM": F_ORDER_PLATFORM, "VIRTIO_F_SR_IOV": F_SR_IOV,
    "VIRTIO_F_NOTIFICATION_DATA": F_NOTIFICATION_DATA,
    "VIRTIO_F_NOTIF_CONFIG_DATA": F_NOTIF_CONFIG_DATA, "VIRTIO_F_RING_RESET": F_RING_RESET,
    "VIRTIO_F_ADMIN_VQ": F_ADMIN_VQ, "VIRTIO_F_SUSPEND": F_SUSPEND,
    "VIRTIO_F_SWIOTLB": F_SWIOTLB, "VIRTIO_F_QUEUE_ENCRYPTION": F_QUEUE_ENCRYPTION,
}
# Older spellings some texts use for two of them.
FEATURE_ALIASES = {"VIRTIO_RING_F_INDIRECT_DESC": F_INDIRECT_DESC,
                   "VIRTIO_RING_F_EVENT_IDX": F_EVENT_IDX}

# Device ids of the device types the runtime implements (every type's id and
# queues are data: device_ref/device_types.py).
ID_NET = 1
ID_BLOCK = 2
ID_CONSOLE = 3
ID_ENTROPY = 4

# Network device: the feature bits that decide the size of the header in
# front of every frame (struct virtio_net_hdr), and those sizes.
NET_F_MRG_RXBUF = 15
NET_F_HASH_REPORT = 57
NET_HDR_LEGACY = 10          # without VERSION_1 and MRG_RXBUF: no num_buffers
NET_HDR = 12                 # with VERSION_1 (or MRG_RXBUF): num_buffers included
NET_HDR_HASH = 20            # with HASH_REPORT: hash_value, hash_report, padding
# The other network-device bits the reference device offers or judges.
NET_F_CSUM = 0
NET_F_GUEST_CSUM = 1
NET_F_MTU = 3
NET_F_MAC = 5
NET_F_STATUS = 16
NET_F_CTRL_VQ = 17
NET_F_MQ = 22
# struct virtio_net_config: field -> (offset, size).
NET_CONFIG = {"mac": (0, 6), "status": (6, 2), "max_virtqueue_pairs": (8, 2), "mtu": (10, 2)}
NET_S_LINK_UP = 1
# struct virtio_net_hdr: flags, gso_type, hdr_len, gso_size, csum_start,
# csum_offset, then num_buffers (le16 at offset 10, when the header has it).
NET_HDR_F_NEEDS_CSUM = 1
NET_HDR_GSO_NONE = 0
NET_HDR_NUM_BUFFERS = 10
# The shortest and longest MTU a device may show (68 .. 65535).
NET_MTU_MIN = 68
NET_MTU_MAX = 65535
ETH_HLEN = 14

# Console device: feature bits and struct virtio_console_config.
CONSOLE_F_SIZE = 0
CONSOLE_F_MULTIPORT = 1
CONSOLE_F_EMERG_WRITE = 2
CONSOLE_CONFIG = {"cols": (0, 2), "rows": (2, 2), "max_nr_ports": (4, 4), "emerg_wr": (8, 4)}

# Block device: feature bits.
BLK_F_SIZE_MAX = 1
BLK_F_SEG_MAX = 2
BLK_F_GEOMETRY = 4
BLK_F_RO = 5
BLK_F_BLK_SIZE = 6
BLK_F_FLUSH = 9
BLK_F_TOPOLOGY = 10
BLK_F_CONFIG_WCE = 11
BLK_F_MQ = 12
BLK_F_DISCARD = 13
BLK_F_WRITE_ZEROES = 14
BLK_F_LIFETIME = 15
BLK_F_SECURE_ERASE = 16
BLK_FEATURES = {
    "VIRTIO_BLK_F_SIZE_MAX": BLK_F_SIZE_MAX, "VIRTIO_BLK_F_SEG_MAX": BLK_F_SEG_MAX,
    "VIRTIO_BLK_F_GEOMETRY": BLK_F_GEOMETRY, "VIRTIO_BLK_F_RO": BLK_F_RO,
    "VIRTIO_BLK_F_BLK_SIZE": BLK_F_BLK_SIZE, "VIRTIO_BLK_F_FLUSH": BLK_F_FLUSH,
    "VIRTIO_BLK_F_TOPOLOGY": BLK_F_TOPOLOGY, "VIRTIO_BLK_F_CONFIG_WCE": BLK_F_CONFIG_WCE,
    "VIRTIO_BLK_F_MQ": BLK_F_MQ, "VIRTIO_BLK_F_DISCARD": BLK_F_DISCARD,
    "VIRTIO_BLK_F_WRITE_ZEROES": BLK_F_WRITE_ZEROES, "VIRTIO_BLK_F_LIFETIME": BLK_F_LIFETIME,
    "VIRTIO_BLK_F_SECURE_ERASE": BLK_F_SECURE_ERASE,
}

# Block device: request types, status values, sizes.
BLK_T_IN = 0
BLK_T_OUT = 1
BLK_T_FLUSH = 4
BLK_T_GET_ID = 8
BLK_T_GET_LIFETIME = 10
BLK_T_DISCARD = 11
BLK_T_WRITE_ZEROES = 13
BLK_T_SECURE_ERASE = 14
BLK_S_OK = 0
BLK_S_IOERR = 1
BLK_S_UNSUPP = 2
BLK_STATUS = {"OK": BLK_S_OK, "IOERR": BLK_S_IOERR, "UNSUPP": BLK_S_UNSUPP}
BLK_SECTOR = 512
BLK_ID_LEN = 20

# struct virtio_blk_config: field -> (offset, size).
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

# File system device: feature bits.
FS_FEATURES = {"VIRTIO_FS_F_NOTIFICATION": 0}

# Traditional memory balloon: page frame numbers count 4 KiB units whatever
# the page size; a statistics entry is le16 tag + le64 value, packed.
BALLOON_PFN_SHIFT = 12
BALLOON_STAT = 10
BALLOON_STAT_TAGS = {"SWAP_IN": 0, "SWAP_OUT": 1, "MAJFLT": 2, "MINFLT": 3, "MEMFREE": 4,
                     "MEMTOT": 5, "AVAIL": 6, "CACHES": 7, "HTLB_PGALLOC": 8,
                     "HTLB_PGFAIL": 9}
BALLOON_CONFIG = {"num_pages": (0, 4), "actual": (4, 4), "free_page_hint_cmd_id": (8, 4),
                  "poison_val": (12, 4)}

# SCSI host: struct virtio_scsi_config, the request's fixed parts (without
# T10 PI), the response codes, the SCSI status codes SAM defines.
SCSI_CONFIG = {"num_queues": (0, 4), "seg_max": (4, 4), "max_sectors": (8, 4),
               "cmd_per_lun": (12, 4), "event_info_size": (16, 4), "sense_size": (20, 4),
               "cdb_size": (24, 4), "max_channel": (28, 2), "max_target": (30, 2),
               "max_lun": (32, 4)}
SCSI_CDB_DEFAULT = 32
SCSI_SENSE_DEFAULT = 96
SCSI_REQ_HEAD = 19          # lun[8], id, task_attr, prio, crn (the CDB follows)
SCSI_RESP_HEAD = 12         # sense_len, residual, status_qualifier, status, response
SCSI_RESPONSES = {"OK": 0, "OVERRUN": 1, "ABORTED": 2, "BAD_TARGET": 3, "RESET": 4,
                  "BUSY": 5, "TRANSPORT_FAILURE": 6, "TARGET_FAILURE": 7,
                  "NEXUS_FAILURE": 8, "FAILURE": 9}
SAM_STATUS = {"GOOD": 0x00, "CHECK_CONDITION": 0x02, "CONDITION_MET": 0x04, "BUSY": 0x08,
              "RESERVATION_CONFLICT": 0x18, "TASK_SET_FULL": 0x28, "ACA_ACTIVE": 0x30,
              "TASK_ABORTED": 0x40}
SCSI_SENSE_UNIT_ATTENTION = 0x6
SCSI_INQUIRY, SCSI_READ_CAPACITY_10, SCSI_READ_10, SCSI_WRITE_10 = 0x12, 0x25, 0x28, 0x2A

# GPU: struct virtio_gpu_config, command and response types, the fence flag.
GPU_CONFIG = {"events_read": (0, 4), "events_clear": (4, 4), "num_scanouts": (8, 4),
              "num_capsets": (12, 4)}
GPU_HDR = 24                # type, flags, fence_id, ctx_id, ring_idx, padding
GPU_MAX_SCANOUTS = 16
GPU_FLAG_FENCE = 1
GPU_CMD = {"GET_DISPLAY_INFO": 0x0100, "RESOURCE_CREATE_2D": 0x0101, "RESOURCE_UNREF": 0x0102,
           "SET_SCANOUT": 0x0103, "RESOURCE_FLUSH": 0x0104, "TRANSFER_TO_HOST_2D": 0x0105,
           "RESOURCE_ATTACH_BACKING": 0x0106, "RESOURCE_DETACH_BACKING": 0x0107}
GPU_RESP = {"OK_NODATA": 0x1100, "OK_DISPLAY_INFO": 0x1101, "OK_CAPSET_INFO": 0x1102,
            "OK_CAPSET": 0x1103, "OK_EDID": 0x1104, "ERR_UNSPEC": 0x1200,
            "ERR_OUT_OF_MEMORY": 0x1201, "ERR_INVALID_SCANOUT_ID": 0x1202,
            "ERR_INVALID_RESOURCE_ID": 0x1203, "ERR_INVALID_CONTEXT_ID": 0x1204,
            "ERR_INVALID_PARAMETER": 0x1205}
GPU_FORMAT_B8G8R8X8_UNORM = 2

# Input: struct virtio_input_config (select, subsel, size, then 128 bytes),
# the select values, and the evdev numbers the checks use.
INPUT_CONFIG = {"select": (0, 1), "subsel": (1, 1), "size": (2, 1)}
INPUT_CFG_DATA = 8
INPUT_CFG = {"UNSET": 0x00, "ID_NAME": 0x01, "ID_SERIAL": 0x02, "ID_DEVIDS": 0x03,
             "PROP_BITS": 0x10, "EV_BITS": 0x11, "ABS_INFO": 0x12}
INPUT_EVENT = 8             # le16 type, le16 code, le32 value
EV_SYN, EV_KEY, EV_ABS = 0x00, 0x01, 0x03

# Console: struct virtio_console_control (le32 id, le16 event, le16 value)
# and its events (the configuration is with the feature bits above).
CONSOLE_CONTROL = 8
CONSOLE_EVENTS = {"DEVICE_READY": 0, "DEVICE_ADD": 1, "DEVICE_REMOVE": 2, "PORT_READY": 3,
                  "CONSOLE_PORT": 4, "RESIZE": 5, "PORT_OPEN": 6, "PORT_NAME": 7}

# PCI: vendor capability id and virtio structure cfg_type values.
PCI_CAP_ID_VNDR = 0x09
VIRTIO_PCI_CAP_SHARED_MEMORY_CFG = 8
VIRTIO_PCI_CAP_SWIOTLB_CFG = 10     # proposed with VIRTIO_F_SWIOTLB
VIRTIO_PCI_CAP_QENC_CFG = 11        # proposed with VIRTIO_F_QUEUE_ENCRYPTION


# ---- PCI and MMIO transport registers (device_ref/transports) ----------------
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
CAP_SHARED_MEMORY = VIRTIO_PCI_CAP_SHARED_MEMORY_CFG
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

# Group administration commands (virtio v1.4, "Device groups" and
# "Administration Virtqueues"): struct virtio_admin_cmd is a 24-byte
# device-readable header (le16 opcode, le16 group_type, 12 reserved bytes,
# le64 group_member_id) then command-specific data, and an 8-byte
# device-writable header (le16 status, le16 status_qualifier, 4 reserved
# bytes) then the command-specific result.
ADMIN_CMD_HEADER = 24
ADMIN_RESULT_HEADER = 8
ADMIN_GROUP_SELF = 0x0
ADMIN_GROUP_SRIOV = 0x1
ADMIN_OPCODES = {
    "LIST_QUERY": 0x0, "LIST_USE": 0x1,
    "LEGACY_COMMON_CFG_WRITE": 0x2, "LEGACY_COMMON_CFG_READ": 0x3,
    "LEGACY_DEV_CFG_WRITE": 0x4, "LEGACY_DEV_CFG_READ": 0x5, "LEGACY_NOTIFY_INFO": 0x6,
    "CAP_ID_LIST_QUERY": 0x7, "DEVICE_CAP_GET": 0x8, "DRIVER_CAP_SET": 0x9,
    "RESOURCE_OBJ_CREATE": 0xA, "RESOURCE_OBJ_QUERY": 0xB, "RESOURCE_OBJ_MODIFY": 0xC,
    "RESOURCE_OBJ_DESTROY": 0xD, "DEV_PARTS_METADATA_GET": 0xE, "DEV_PARTS_GET": 0xF,
    "DEV_PARTS_SET": 0x10, "DEV_MODE_SET": 0x11,
}
ADMIN_STATUS = {"OK": 0, "ENXIO": 6, "EAGAIN": 11, "ENOMEM": 12, "EBUSY": 16,
                "EINVAL": 22, "ENOSPC": 28}
ADMIN_QUALIFIER = {"OK": 0x0, "INVALID_COMMAND": 0x1, "INVALID_OPCODE": 0x2,
                   "INVALID_FIELD": 0x3, "INVALID_GROUP": 0x4, "INVALID_MEMBER": 0x5,
                   "NORESOURCE": 0x6, "TRYAGAIN": 0x7}
