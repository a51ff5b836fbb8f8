"""Error codes of the ring core, shared by the C core and the Python twin.

The numeric values are part of the interface: ring.h defines the same
numbers, and both backends must report the same code for the same input.
"""
from __future__ import annotations

from enum import IntEnum


class RingErrorCode(IntEnum):
    OK = 0
    # guest memory map and configuration
    OUT_OF_BOUNDS = 1          # range not inside one region (outside, or straddles an end)
    ADDR_OVERFLOW = 2          # address + length wraps past 2**64
    BAD_CONFIG = 3             # queue size, ring alignment, overlapping or read-only region
    QUEUE_FULL = 4             # driver: not enough free descriptors or buffer ids
    BAD_REQUEST = 5            # caller error: empty chain, unknown option, short batch buffers
    # device side: what a hostile driver can put in the rings
    AVAIL_IDX_JUMP = 10        # more buffers made available than the ring holds
    DESC_INDEX_RANGE = 11      # head or next index outside the (indirect) table
    CHAIN_TOO_LONG = 12        # a loop, or more descriptors than the queue size
    INDIRECT_NOT_NEGOTIATED = 13
    INDIRECT_NESTED = 14       # INDIRECT flag inside an indirect table
    INDIRECT_WITH_NEXT = 15    # INDIRECT and NEXT both set
    INDIRECT_BAD_LEN = 16      # table length zero or not a multiple of 16
    READ_AFTER_WRITE = 17      # device-readable segment after a device-writable one
    CHAIN_LEN_OVERFLOW = 18    # writable bytes of a chain do not fit in 32 bits
    BUFFER_ID_RANGE = 19       # packed: buffer id >= queue size
    ID_IN_USE = 20             # head / buffer id made available again while in flight
    PACKED_BAD_FLAGS = 21      # packed: chained descriptor not marked available for its lap
    PUSH_UNKNOWN_ID = 22       # device caller pushed an id that is not in flight
    PUSH_OUT_OF_ORDER = 23     # IN_ORDER negotiated but pushed id is not the oldest
    # driver side: what a hostile device can put in the rings
    USED_IDX_JUMP = 30         # used index moved past what is outstanding
    USED_ID_BAD = 31           # used id that is not in flight
    USED_LEN_TOO_BIG = 32      # used length larger than the buffer's writable size
    USED_BAD_FLAGS = 33        # packed: next used slot marked available for the other lap
    USED_WRONG_WRAP = 34       # packed: used descriptor written with the wrong wrap counter


_MESSAGES = {
    RingErrorCode.OUT_OF_BOUNDS: "address range is not inside one guest memory region",
    RingErrorCode.ADDR_OVERFLOW: "address plus length overflows 64 bits",
    RingErrorCode.BAD_CONFIG: "invalid queue or memory configuration",
    RingErrorCode.QUEUE_FULL: "not enough free descriptors",
    RingErrorCode.BAD_REQUEST: "invalid request",
    RingErrorCode.AVAIL_IDX_JUMP: "driver made more buffers available than the queue holds",
    RingErrorCode.DESC_INDEX_RANGE: "descriptor index out of range",
    RingErrorCode.CHAIN_TOO_LONG: "descriptor chain loops or is longer than the queue size",
    RingErrorCode.INDIRECT_NOT_NEGOTIATED: "indirect descriptor without VIRTIO_F_INDIRECT_DESC",
    RingErrorCode.INDIRECT_NESTED: "indirect descriptor inside an indirect table",
    RingErrorCode.INDIRECT_WITH_NEXT: "indirect descriptor with NEXT set",
    RingErrorCode.INDIRECT_BAD_LEN: "indirect table length is zero or not a multiple of 16",
    RingErrorCode.READ_AFTER_WRITE: "device-readable segment after a device-writable one",
    RingErrorCode.CHAIN_LEN_OVERFLOW: "writable length of the chain exceeds 32 bits",
    RingErrorCode.BUFFER_ID_RANGE: "buffer id out of range",
    RingErrorCode.ID_IN_USE: "buffer made available again while still in flight",
    RingErrorCode.PACKED_BAD_FLAGS: "chained descriptor not marked available (wrong wrap counter)",
    RingErrorCode.PUSH_UNKNOWN_ID: "pushed id is not in flight",
    RingErrorCode.PUSH_OUT_OF_ORDER: "IN_ORDER: pushed id is not the oldest in flight",
    RingErrorCode.USED_IDX_JUMP: "used index moved past the outstanding buffers",
    RingErrorCode.USED_ID_BAD: "used id was not made available",
    RingErrorCode.USED_LEN_TOO_BIG: "used length exceeds the buffer's writable size",
    RingErrorCode.USED_BAD_FLAGS: "used slot carries available flags for the other lap",
    RingErrorCode.USED_WRONG_WRAP: "used descriptor written with the wrong wrap counter",
}


class RingError(Exception):
    """A ring or memory operation failed; `code` says why.

    On the device side any error raised by a pop leaves the queue broken
    (a real device would set DEVICE_NEEDS_RESET); on the driver side any
    error raised by collect means the device misbehaved.  `count` is how
    many items of a batch were completed before the error.
    """

    def __init__(self, code: int, detail: str = "", count: int = 0) -> None:
        self.code = RingErrorCode(code)
        self.count = count
        msg = _MESSAGES.get(self.code, self.code.name)
        if detail:
            msg = f"{msg} ({detail})"
        super().__init__(f"{self.code.name}: {msg}")
