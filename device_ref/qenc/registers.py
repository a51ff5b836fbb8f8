"""The queue-encryption register block.

    offset  type    name         access
    0x00    le16    key_queue    write  queue the next commit applies to
    0x02    le16    key_commit   write  writing it commits: 1 installs the
                                        staged algorithm and key for key_queue,
                                        0 leaves the queue unprotected
    0x04    le32    algorithm    write  0 NULL, 1 AES-256-GCM, 2 ChaCha20-Poly1305
    0x08    u8[32]  key          write  key material
    0x28    le32    supported_   read   bit n set: the device can install
            algorithms                  algorithm n (bit 0, NULL, always)

Reads of the write-only fields return 0, so keys never read back; writes
to ``supported_algorithms`` are ignored.

In this reference runtime the block is reached through the device
configuration path at ``WINDOW`` (config offset 0xc0, past every
reference device's configuration): both the in-process transport and
vhost-user (VHOST_USER_SET_CONFIG) carry those accesses to the device. On a
PCI device the proposal locates the block with its own capability.
"""
from __future__ import annotations

import struct
from dataclasses import dataclass, field

SIZE = 44
WINDOW = 0xC0
KEY_QUEUE = 0x00
KEY_COMMIT = 0x02
ALGORITHM = 0x04
KEY = 0x08
ALGORITHMS = 0x28          # read-only bitmap of the algorithms the device implements
WRITABLE = ALGORITHMS      # the write-only fields end where the bitmap starts


@dataclass(frozen=True)
class Commit:
    """A write of key_commit: what the device is asked to install."""
    queue: int
    enable: int
    algorithm: int
    key: bytes


@dataclass
class RegisterBlock:
    """The staging registers. Writes land here; a write that covers
    key_commit yields a Commit, after which the staged key is wiped."""
    image: bytearray = field(default_factory=lambda: bytearray(WRITABLE))

    def write(self, offset: int, data: bytes) -> Commit | None:
        if offset < 0 or offset + len(data) > SIZE:
            raise ValueError(f"register write {offset}+{len(data)} outside the {SIZE}-byte block")
        keep = data[:max(0, WRITABLE - offset)]     # bytes aimed at the bitmap are dropped
        self.image[offset:offset + len(keep)] = keep
        if offset <= KEY_COMMIT < offset + len(keep):
            q, en, alg = struct.unpack_from("<HHI", self.image, 0)
            commit = Commit(q, en, alg, bytes(self.image[KEY:KEY + 32]))
            self.wipe()
            return commit
        return None

    def wipe(self) -> None:
        self.image[:] = bytes(WRITABLE)


def read(offset: int, length: int, algorithms: int) -> bytes:
    """What a read of ``length`` bytes at block offset ``offset`` returns:
    zero everywhere but the bitmap."""
    image = bytes(WRITABLE) + struct.pack("<I", algorithms)
    out = image[max(offset, 0):max(offset, 0) + length]
    return out.ljust(length, b"\0")


def program(queue: int, algorithm: int, key: bytes) -> list[tuple[int, bytes]]:
    """The register writes a driver makes to install ``key`` for ``queue``:
    selector, algorithm and key first, key_commit last (it commits)."""
    return [(KEY_QUEUE, struct.pack("<H", queue)),
            (ALGORITHM, struct.pack("<I", algorithm)),
            (KEY, bytes(key).ljust(32, b"\0")),
            (KEY_COMMIT, struct.pack("<H", 1))]
