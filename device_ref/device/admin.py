"""Group administration commands of an owner device (VIRTIO_F_ADMIN_VQ).

An administration virtqueue carries one command per chain: the
device-readable part is ``struct virtio_admin_cmd``'s header (opcode,
group type, member id) and its command-specific data, the device-writable
part receives status, status qualifier and the command-specific result.
This module decides what one command does to the device's command state
and what the device writes back; the queue plumbing stays in ``core.py``.

The reference device is the owner of one group, the self group (type 0:
the device itself, member id 0), and knows the two list commands plus the
capability commands with an empty capability set: it reports no
capability id, so asking for one gets ENXIO.  The list of commands the
driver may use starts as the two list commands after every reset and is
replaced by each successful LIST_USE; any other command is refused until
LIST_USE named it.
"""
from __future__ import annotations

import struct
from dataclasses import dataclass, field

from device_ref.virtio_constants import (ADMIN_CMD_HEADER, ADMIN_GROUP_SELF, ADMIN_OPCODES,
                                         ADMIN_QUALIFIER, ADMIN_RESULT_HEADER, ADMIN_STATUS)

HEADER = struct.Struct("<HH12xQ")
RESULT = struct.Struct("<HH4x")

LIST_QUERY = ADMIN_OPCODES["LIST_QUERY"]
LIST_USE = ADMIN_OPCODES["LIST_USE"]
CAP_ID_LIST_QUERY = ADMIN_OPCODES["CAP_ID_LIST_QUERY"]
DEVICE_CAP_GET = ADMIN_OPCODES["DEVICE_CAP_GET"]
DRIVER_CAP_SET = ADMIN_OPCODES["DRIVER_CAP_SET"]
ALWAYS_USED = frozenset({LIST_QUERY, LIST_USE})
# the most command-specific data one command is read for: an opcode bitmap
# of 64 words covers every opcode the specification can assign
MAX_DATA = 64 * 8


def opcode_bitmap(opcodes: frozenset[int] | set[int]) -> bytes:
    """``struct virtio_admin_cmd_list``: one bit per opcode, 64-bit little-endian words."""
    words = [0] * (max(opcodes, default=0) // 64 + 1)
    for op in opcodes:
        words[op // 64] |= 1 << (op % 64)
    return struct.pack(f"<{len(words)}Q", *words)


def bitmap_opcodes(data: bytes) -> set[int]:
    """The opcodes whose bits ``data`` (whole 64-bit words; a short tail reads as zero) sets."""
    data = data + bytes(-len(data) % 8)
    out = set()
    for i in range(len(data) // 8):
        (word,) = struct.unpack_from("<Q", data, 8 * i)
        out |= {64 * i + b for b in range(64) if word >> b & 1}
    return out


@dataclass(frozen=True)
class Outcome:
    status: int
    qualifier: int
    result: bytes = b""

    @classmethod
    def ok(cls, result: bytes = b"") -> "Outcome":
        return cls(ADMIN_STATUS["OK"], ADMIN_QUALIFIER["OK"], result)

    @classmethod
    def einval(cls, why: str) -> "Outcome":
        return cls(ADMIN_STATUS["EINVAL"], ADMIN_QUALIFIER[why])


@dataclass
class AdminCommands:
    """The command state of an owner device: which opcodes each group type
    supports, and which the driver said it uses."""
    supported: dict[int, frozenset[int]] = field(default_factory=lambda: {
        ADMIN_GROUP_SELF: frozenset({LIST_QUERY, LIST_USE, CAP_ID_LIST_QUERY,
                                     DEVICE_CAP_GET, DRIVER_CAP_SET})})
    used: dict[int, frozenset[int]] = field(default_factory=dict)
    executed: list[int] = field(default_factory=list)   # opcodes carried out, for tests

    def __post_init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        """After a device reset the driver may use the two list commands only."""
        self.used = {g: ALWAYS_USED for g in self.supported}

    def execute(self, request: bytes) -> Outcome:
        """Carry out one command given its device-readable part (short parts
        read as zero, bytes past what a command needs are ignored)."""
        head = request[:ADMIN_CMD_HEADER].ljust(ADMIN_CMD_HEADER, b"\0")
        opcode, group, _member = HEADER.unpack(head)
        data = request[ADMIN_CMD_HEADER:ADMIN_CMD_HEADER + MAX_DATA]
        refusal = self.refusal(opcode, group)
        if refusal is not None:
            return refusal
        self.executed.append(opcode)
        return self.run(opcode, group, data)

    def refusal(self, opcode: int, group: int) -> Outcome | None:
        """The EINVAL a command gets before it runs: an unknown group type,
        then an opcode the group does not support or the driver did not enable."""
        if group not in self.supported:
            return Outcome.einval("INVALID_GROUP")
        if opcode not in self.supported[group] or opcode not in self.used[group]:
            return Outcome.einval("INVALID_OPCODE")
        return None

    def run(self, opcode: int, group: int, data: bytes) -> Outcome:
        if opcode == LIST_QUERY:
            return Outcome.ok(opcode_bitmap(self.supported[group]))
        if opcode == LIST_USE:
            wanted = bitmap_opcodes(data)
            if not ALWAYS_USED <= wanted or not wanted <= self.supported[group]:
                return Outcome.einval("INVALID_FIELD")
            self.used[group] = frozenset(wanted)
            return Outcome.ok()
        if opcode == CAP_ID_LIST_QUERY:
            return Outcome.ok(bytes(8))          # no capability id is supported
        # DEVICE_CAP_GET, DRIVER_CAP_SET: no capability id was reported
        return Outcome(ADMIN_STATUS["ENXIO"], ADMIN_QUALIFIER["INVALID_FIELD"])


def reply(outcome: Outcome, room: int) -> bytes:
    """What the device writes into a device-writable part of ``room`` bytes:
    the status header and the result, cut to the room the driver gave."""
    whole = RESULT.pack(outcome.status, outcome.qualifier) + outcome.result
    return whole[:room]


assert HEADER.size == ADMIN_CMD_HEADER and RESULT.size == ADMIN_RESULT_HEADER
