"""The queue-encryption register block (write-only; every read returns 0).

    offset  type    name
    0x00    le16    queue_select   queue the next commit applies to
    0x02    le16    queue_enable   writing it commits: 1 installs the staged
                                   algorithm and key for queue_select, 0 the
                                   NULL algorithm
    0x04    le32    algorithm      0 NULL, 1 AES-256-GCM, 2 ChaCha20-Poly1305
    0x08    u8[32]  key            key material

In this reference runtime the block is reached through the device
configuration path at ``WINDOW`` (config offset 0xc0, past every
reference device's configuration): both the in-process transport and
vhost-user (VHOST_USER_SET_CONFIG) carry those writes to the device. On a
PCI device the proposal locates the block with its own capability.
"""
from __future__ import annotations

import struct
from dataclasses import dataclass, field

SIZE = 40
WINDOW = 0xC0
QUEUE_SELECT = 0x00
QUEUE_ENABLE = 0x02
ALGORITHM = 0x04
KEY = 0x08


@dataclass(frozen=True)
class Commit:
    """A write of queue_enable: what the device is asked to install."""
    queue: int
    enable: int
    algorithm: int
    key: bytes


@dataclass
class RegisterBlock:
    """The staging registers. Writes land here; a write that covers
    queue_enable yields a Commit, after which the staged key is wiped."""
    image: bytearray = field(default_factory=lambda: bytearray(SIZE))

    def write(self, offset: int, data: bytes) -> Commit | None:
        if offset < 0 or offset + len(data) > SIZE:
            raise ValueError(f"register write {offset}+{len(data)} outside the {SIZE}-byte block")
        self.image[offset:offset + len(data)] = data
        if offset <= QUEUE_ENABLE < offset + len(data):
            q, en, alg = struct.unpack_from("<HHI", self.image, 0)
            commit = Commit(q, en, alg, bytes(self.image[KEY:KEY + 32]))
            self.wipe()
            return commit
        return None

    def wipe(self) -> None:
        self.image[:] = bytes(SIZE)


def program(queue: int, algorithm: int, key: bytes) -> list[tuple[int, bytes]]:
    """The register writes a driver makes to install ``key`` for ``queue``:
    selector, algorithm and key first, queue_enable last (it commits)."""
    return [(QUEUE_SELECT, struct.pack("<H", queue)),
            (ALGORITHM, struct.pack("<I", algorithm)),
            (KEY, bytes(key).ljust(32, b"\0")),
            (QUEUE_ENABLE, struct.pack("<H", 1))]
