"""A descriptor chain as a device type sees it: device-readable bytes
followed by device-writable bytes, whatever the descriptor boundaries.

Device types (blk, rng) work on this view only, so a request header split
over several descriptors, or data spread over many, reads the same as one
contiguous buffer. All memory access goes through the memory object the
transport handed the device (a ring-core memory map), which does the bounds
checks.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


class ByteMemory(Protocol):
    def read(self, addr: int, length: int) -> bytes: ...

    def write(self, addr: int, data: bytes) -> None: ...


@dataclass(frozen=True)
class Segment:
    # Same attribute names as ``device_ref.ring.batch.Segment`` so the ring
    # core's popped segments can be used directly.
    gpa: int
    len: int
    writable: bool


class ChainIO:
    """Stream access to one chain's readable part and writable part."""

    def __init__(self, memory: ByteMemory, segments) -> None:
        self.memory = memory
        self.readable = [s for s in segments if not s.writable]
        self.writable = [s for s in segments if s.writable]
        self.readable_len = sum(s.len for s in self.readable)
        self.writable_len = sum(s.len for s in self.writable)
        self.written = 0  # bytes written so far, from the start of the writable part

    def read(self, offset: int, length: int) -> bytes:
        """``length`` bytes of the readable part from ``offset`` (short at its end)."""
        return b"".join(self._pieces(self.readable, offset, length, None))

    def write(self, offset: int, data: bytes) -> int:
        """Write into the writable part at ``offset``; returns bytes written."""
        n = sum(self._pieces(self.writable, offset, len(data), data))
        self.written = max(self.written, offset + n) if n else self.written
        return n

    def _pieces(self, segs: list[Segment], offset: int, length: int, data: bytes | None):
        pos = 0
        done = 0
        for s in segs:
            if done >= length:
                break
            if offset < pos + s.len:
                start = max(offset - pos, 0)
                n = min(s.len - start, length - done)
                if data is None:
                    yield self.memory.read(s.gpa + start, n)
                else:
                    self.memory.write(s.gpa + start, data[done:done + n])
                    yield n
                done += n
                offset = pos + s.len
            pos += s.len
