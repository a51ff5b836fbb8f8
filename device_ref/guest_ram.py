"""Guest memory for the in-process transport: guarded anonymous mappings.

Each region (ordinary RAM, a device's bounce region) is its own mmap with
a PROT_NONE guard page on either side, so a stray host access just outside
a region faults instead of silently reading a neighbour. The driver sees
all regions through ``GuestRam`` (guest address -> bytes); a device sees
only the regions its transport puts in its ring-core memory map.
"""
from __future__ import annotations

import bisect
import ctypes
import ctypes.util
import mmap
from dataclasses import dataclass

from device_ref.transport import TransportError

PAGE = mmap.PAGESIZE
_libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
_libc.mprotect.argtypes = (ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int)
_PROT_NONE = 0


class GuardedBuffer:
    """``size`` bytes of anonymous memory between two inaccessible pages."""

    def __init__(self, size: int) -> None:
        self.size = size
        body = -(-max(size, 1) // PAGE) * PAGE
        self._map = mmap.mmap(-1, body + 2 * PAGE, prot=mmap.PROT_READ | mmap.PROT_WRITE)
        base = ctypes.addressof(ctypes.c_char.from_buffer(self._map))
        for addr in (base, base + PAGE + body):
            if _libc.mprotect(ctypes.c_void_p(addr), PAGE, _PROT_NONE) != 0:
                raise OSError(ctypes.get_errno(), "mprotect of a guard page failed")
        self.host_address = base + PAGE
        self.view = memoryview(self._map)[PAGE:PAGE + size]

    def close(self) -> None:
        # Unmap now if nobody else holds a view; otherwise the mapping goes
        # when the last view does (a ring map may outlive the transport).
        try:
            self.view.release()
            self._map.close()
        except BufferError:
            pass


@dataclass
class Region:
    base: int
    size: int
    buffer: GuardedBuffer
    kind: str  # "ram" or "bounce"

    @property
    def end(self) -> int:
        return self.base + self.size


class GuestRam:
    """Guest-physical address space made of guarded regions."""

    def __init__(self) -> None:
        self.regions: list[Region] = []
        self._bases: list[int] = []

    def add(self, base: int, size: int, kind: str = "ram") -> Region:
        for r in self.regions:
            if base < r.end and r.base < base + size:
                raise TransportError(f"region {base:#x}+{size:#x} overlaps {r.base:#x}+{r.size:#x}")
        region = Region(base, size, GuardedBuffer(size), kind)
        pos = bisect.bisect(self._bases, base)
        self._bases.insert(pos, base)
        self.regions.insert(pos, region)
        return region

    def find(self, addr: int, length: int) -> tuple[Region, int]:
        pos = bisect.bisect_right(self._bases, addr) - 1
        if pos >= 0:
            r = self.regions[pos]
            if length >= 0 and addr + length <= r.end:
                return r, addr - r.base
        raise TransportError(f"guest range {addr:#x}+{length:#x} is not inside one region")

    def read(self, addr: int, length: int) -> bytes:
        r, off = self.find(addr, length)
        return bytes(r.buffer.view[off:off + length])

    def write(self, addr: int, data: bytes) -> None:
        r, off = self.find(addr, len(data))
        r.buffer.view[off:off + len(data)] = data

    def view(self, addr: int, length: int) -> memoryview:
        r, off = self.find(addr, length)
        return r.buffer.view[off:off + length]

    def ram(self) -> list[tuple[int, int]]:
        return [(r.base, r.size) for r in self.regions if r.kind == "ram"]

    def snapshot(self, kind: str | None = None) -> dict[int, bytes]:
        """Copies of region contents by base (to prove what was not touched)."""
        return {r.base: bytes(r.buffer.view) for r in self.regions
                if kind is None or r.kind == kind}

    def close(self) -> None:
        for r in self.regions:
            r.buffer.close()
        self.regions.clear()
        self._bases.clear()
