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

    def translate(self, addr: int, length: int) -> memoryview: ...


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
        if len(segments) == 2 and not segments[0].writable and segments[1].writable:
            # the usual request shape: one part each way
            r, w = segments
            self.readable = [r]
            self.writable = [w]
            self.readable_len = r.len
            self.writable_len = w.len
        else:
            self.readable = [s for s in segments if not s.writable]
            self.writable = [s for s in segments if s.writable]
            self.readable_len = sum(s.len for s in self.readable)
            self.writable_len = sum(s.len for s in self.writable)
        self.written = 0  # bytes written so far, from the start of the writable part

    def read(self, offset: int, length: int) -> bytes:
        """``length`` bytes of the readable part from ``offset`` (short at its end)."""
        if len(self.readable) == 1:
            s = self.readable[0]
            n = min(length, s.len - offset)
            return self.memory.read(s.gpa + offset, n) if n > 0 and offset >= 0 else b""
        return b"".join(self._pieces(self.readable, offset, length, None))

    def read_view(self, offset: int, length: int):
        """Like ``read``, but without a copy when the bytes lie in one
        descriptor: a view of guest memory, which the driver may change at
        any time. Good for copying data through; never decide on it."""
        translate = getattr(self.memory, "translate", None)
        if len(self.readable) == 1 and translate is not None:
            s = self.readable[0]
            n = min(length, s.len - offset)
            return translate(s.gpa + offset, n) if n > 0 and offset >= 0 else b""
        return self.read(offset, length)

    def read_views(self, offset: int, length: int) -> list[memoryview]:
        """Views of guest memory for ``length`` bytes of the readable part
        from ``offset`` (short at its end), one per descriptor touched: for
        moving data straight to storage. The driver may change them at any time."""
        return list(self._views(self.readable, offset, length))

    def write_views(self, offset: int, length: int) -> list[memoryview]:
        """Views of guest memory for ``length`` bytes of the writable part
        from ``offset`` (short at its end): for reading storage straight
        into guest memory. ``written`` is the caller's to report."""
        return list(self._views(self.writable, offset, length))

    def _views(self, segs: list[Segment], offset: int, length: int):
        pos = 0
        for s in segs:
            if length <= 0:
                break
            if offset < pos + s.len and offset >= 0:
                start = max(offset - pos, 0)
                n = min(s.len - start, length)
                yield self.memory.translate(s.gpa + start, n)
                length -= n
                offset = pos + s.len
            pos += s.len

    def write(self, offset: int, data: bytes) -> int:
        """Write into the writable part at ``offset``; returns bytes written."""
        if len(self.writable) == 1 and offset >= 0:
            s = self.writable[0]
            n = max(0, min(len(data), s.len - offset))
            if n:
                self.memory.write(s.gpa + offset, data[:n] if n < len(data) else data)
                self.written = max(self.written, offset + n)
            return n
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
