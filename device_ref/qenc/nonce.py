"""Nonce and associated-data construction.

nonce (12 bytes) = le64 counter | le16 queue index | u8 direction | u8 0
aad   (8 bytes)  = le32 payload length | le16 queue index | u8 direction | u8 algorithm

The counter of a queue is the position of a descriptor chain in the order
the driver made chains available since the queue's key was installed
(0, 1, 2, ...). Both parts of chain n use counter n and differ in the
direction byte, so within one key no nonce repeats; a device or queue
reset discards the key, and the driver installs a fresh one, so the
counter restarting at 0 never meets an old key.
"""
from __future__ import annotations

import struct

TO_DEVICE = 0     # device-readable part: sealed by the driver
TO_DRIVER = 1     # device-writable part: sealed by the device
COUNTER_LIMIT = 1 << 64

NONCE_LAYOUT = struct.Struct("<QHBx")
AAD_LAYOUT = struct.Struct("<IHBB")


def nonce(queue: int, direction: int, counter: int) -> bytes:
    """The 12-byte nonce of one part of one chain."""
    if not 0 <= counter < COUNTER_LIMIT:
        raise OverflowError("the 64-bit counter of this queue is exhausted; reset and rekey")
    return NONCE_LAYOUT.pack(counter, queue, direction)


def aad(length: int, queue: int, direction: int, algorithm: int) -> bytes:
    """The associated data: binds the plaintext length (for the device-writable
    part, the used length less the tag), the queue, the direction and the
    algorithm into the tag."""
    return AAD_LAYOUT.pack(length, queue, direction, algorithm)
