"""Guest memory map: guest physical ranges backed by host buffers.

Every device-side access to rings and buffers goes through a map, with
bounds checks; giving the device a map with only the bounce-buffer region
is how VIRTIO_F_SWIOTLB is enforced.
"""
from __future__ import annotations

import struct
import sys
from dataclasses import dataclass
from typing import Any

from .errors import RingError, RingErrorCode

U64 = 1 << 64


@dataclass(frozen=True)
class Region:
    gpa: int
    size: int
    view: memoryview  # writable, format 'B'
    owner: Any = None  # the buffer object itself (what the C backend maps)

    @property
    def end(self) -> int:
        return self.gpa + self.size


def check_range(gpa: int, length: int) -> None:
    """Raise ADDR_OVERFLOW / BAD_REQUEST for a range no region could hold."""
    if gpa < 0 or length < 0 or gpa >= U64 or length >= U64:
        raise RingError(RingErrorCode.BAD_REQUEST, f"range 0x{gpa:x}+{length}")
    # the end address must itself fit in 64 bits (the C core computes it)
    if gpa + length > U64 - 1:
        raise RingError(RingErrorCode.ADDR_OVERFLOW, f"0x{gpa:x}+0x{length:x}")


_U16 = struct.Struct("<H")
_LITTLE = sys.byteorder == "little"


def store_u16(view: memoryview, offset: int, value: int) -> None:
    """Write a le16 ring field (an index, flags, an event) with one 16-bit
    store, so a device or driver reading it from another thread or process
    never sees half of an update. struct's pack_into may write the two
    bytes one at a time: an avail idx going from 0x01ff to 0x0200 was then
    read as 0x0100, and DPDK's vhost ran 65,536 entries past it
    (docs/conformance.md, "device_io on net")."""
    if _LITTLE:
        view[offset:offset + 2].cast("H")[0] = value
    else:
        _U16.pack_into(view, offset, value)


class GuestMemory:
    """A set of non-overlapping regions; regions can be added, never removed.

    Queues keep using the host buffers they were built with, so a memory
    map is only ever extended; build a new map (and new queues) to replace
    regions, as vhost-user SET_MEM_TABLE does.
    """

    def __init__(self) -> None:
        self._regions: list[Region] = []
        self._owners: list[Any] = []   # keep buffers alive
        self._c_map: Any = None        # C backend's mirror, built on demand
        self._last: Region | None = None   # where translate last found a range
        self.version = 0

    @property
    def regions(self) -> list[Region]:
        return list(self._regions)

    def add_region(self, gpa: int, buffer: Any) -> Region:
        """Map the writable `buffer` (bytearray, mmap, ...) at guest address `gpa`."""
        view = memoryview(buffer)
        if view.readonly:
            raise RingError(RingErrorCode.BAD_CONFIG, "region buffer is read-only")
        if not view.c_contiguous:
            raise RingError(RingErrorCode.BAD_CONFIG, "region buffer is not contiguous")
        view = view.cast("B")
        size = view.nbytes
        if size == 0:
            raise RingError(RingErrorCode.BAD_CONFIG, "empty region")
        check_range(gpa, size)
        for r in self._regions:
            if gpa < r.end and r.gpa < gpa + size:
                raise RingError(RingErrorCode.BAD_CONFIG,
                                f"region 0x{gpa:x}+0x{size:x} overlaps 0x{r.gpa:x}+0x{r.size:x}")
        region = Region(gpa, size, view, buffer)
        self._regions.append(region)
        self._regions.sort(key=lambda r: r.gpa)
        self._owners.append(buffer)
        self.version += 1
        if self._c_map is not None:
            self._c_map.refresh(self)
        return region

    def find(self, gpa: int, length: int) -> tuple[Region, int]:
        """The region holding [gpa, gpa+length) and the offset into it."""
        check_range(gpa, length)
        for r in self._regions:
            if r.gpa <= gpa and gpa + length <= r.end:
                return r, gpa - r.gpa
        raise RingError(RingErrorCode.OUT_OF_BOUNDS, f"0x{gpa:x}+0x{length:x}")

    def translate(self, gpa: int, length: int) -> memoryview:
        """A writable view of [gpa, gpa+length), which must lie in one region."""
        r = self._last
        # the region of the previous access, checked first: a request's
        # buffers usually share one (the bounds checks there imply check_range)
        if r is not None and r.gpa <= gpa and length >= 0 and gpa + length <= r.end:
            off = gpa - r.gpa
            return r.view[off:off + length]
        r, off = self.find(gpa, length)
        self._last = r
        return r.view[off:off + length]

    def read(self, gpa: int, length: int) -> bytes:
        return bytes(self.translate(gpa, length))

    def write(self, gpa: int, data: bytes | bytearray | memoryview) -> None:
        if type(data) is not bytes and type(data) is not bytearray:
            data = memoryview(data).cast("B")
        self.translate(gpa, len(data))[:] = data

    def contains(self, gpa: int, length: int) -> bool:
        r = self._last      # as in translate: the region of the previous access first
        if r is not None and r.gpa <= gpa and length >= 0 and gpa + length <= r.end:
            return True
        try:
            self.find(gpa, length)
        except RingError:
            return False
        return True
