"""Guest memory shared between the two vhost-user processes.

The front-end owns ``SharedRegion``s (a memfd, mapped read-write); it sends
their fds in SET_MEM_TABLE. The back-end maps what it receives into a
``RegionTable`` and can then reach guest memory only through those mappings:
memory the front-end did not share is simply not in the back-end's address
space. That is how VIRTIO_F_SWIOTLB's trust model is enforced here.
"""
from __future__ import annotations

import ctypes
import mmap
import os
from dataclasses import dataclass

from device_ref.vhost_user.protocol import MAX_REGIONS, MemRegion, ProtocolError

PAGE = mmap.PAGESIZE


def buffer_address(buf: mmap.mmap) -> int:
    """The process-virtual address of an mmap (what QEMU sends as user_addr)."""
    return ctypes.addressof(ctypes.c_char.from_buffer(buf))


class SharedRegion:
    """A memfd-backed piece of guest memory, created by the front-end."""

    def __init__(self, guest_addr: int, size: int, name: str = "guest-ram"):
        if size <= 0 or size % PAGE:
            raise ValueError(f"region size must be a positive multiple of {PAGE}")
        self.guest_addr = guest_addr
        self.size = size
        self.fd = os.memfd_create(name, os.MFD_CLOEXEC)
        os.ftruncate(self.fd, size)
        self.mem = mmap.mmap(self.fd, size, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
        self.user_addr = buffer_address(self.mem)

    def describe(self) -> MemRegion:
        return MemRegion(self.guest_addr, self.size, self.user_addr, 0)

    def contains(self, guest_addr: int, length: int = 1) -> bool:
        return self.guest_addr <= guest_addr and guest_addr + length <= self.guest_addr + self.size

    def view(self, guest_addr: int, length: int) -> memoryview:
        if not self.contains(guest_addr, length):
            raise ValueError(f"{guest_addr:#x}+{length} is outside this region")
        off = guest_addr - self.guest_addr
        return memoryview(self.mem)[off:off + length]

    def close(self) -> None:
        try:
            self.mem.close()
        except BufferError:
            pass  # a view is still alive; the mapping goes with the process
        os.close(self.fd)


@dataclass
class MappedRegion:
    """One region the back-end received and mapped."""
    guest_addr: int
    size: int
    user_addr: int
    mem: mmap.mmap
    start: int  # offset of the region's first byte inside ``mem``

    @property
    def host_addr(self) -> int:
        return buffer_address(self.mem) + self.start

    def view(self) -> memoryview:
        return memoryview(self.mem)[self.start:self.start + self.size]

    def buffer(self) -> mmap.mmap | memoryview:
        """The region as a writable buffer: the mapping itself when it is
        exactly the region (the usual, page-aligned case), so no memoryview
        of ours ends up owned by the ring core's memory map."""
        if self.start == 0 and len(self.mem) == self.size:
            return self.mem
        return self.view()


def validate_regions(regions: list[MemRegion]) -> None:
    """Reject empty, wrapping or overlapping regions (guest or user ranges)."""
    if not 1 <= len(regions) <= MAX_REGIONS:
        raise ProtocolError(f"memory table: {len(regions)} regions")
    for i, r in enumerate(regions):
        if r.size == 0:
            raise ProtocolError(f"memory region {i}: size 0")
        for name, start in (("guest", r.guest_addr), ("user", r.user_addr), ("mmap", r.mmap_offset)):
            if start + r.size > 1 << 64:
                raise ProtocolError(f"memory region {i}: {name} range wraps past 2^64")
    for kind in ("guest_addr", "user_addr"):
        spans = sorted((getattr(r, kind), getattr(r, kind) + r.size, i) for i, r in enumerate(regions))
        for (s0, e0, i0), (s1, e1, i1) in zip(spans, spans[1:]):
            if s1 < e0:
                raise ProtocolError(f"memory regions {i0} and {i1} overlap in "
                                    f"{kind.replace('_addr', '')} addresses")


def map_region(region: MemRegion, fd: int, writable: bool = True) -> MappedRegion:
    """Map ``region`` from ``fd``; the fd must really hold every byte of it."""
    try:
        fd_size = os.fstat(fd).st_size
    except OSError as exc:
        raise ProtocolError(f"memory region fd is unusable: {exc.strerror}") from None
    if region.mmap_offset + region.size > fd_size:
        raise ProtocolError(f"memory region {region.guest_addr:#x}+{region.size:#x} at offset "
                            f"{region.mmap_offset:#x} lies beyond its file ({fd_size:#x} bytes)")
    base = region.mmap_offset - region.mmap_offset % PAGE
    start = region.mmap_offset - base
    prot = mmap.PROT_READ | (mmap.PROT_WRITE if writable else 0)
    try:
        mem = mmap.mmap(fd, start + region.size, mmap.MAP_SHARED, prot, offset=base)
    except (OSError, ValueError, OverflowError) as exc:
        raise ProtocolError(f"memory region {region.guest_addr:#x}: cannot map: {exc}") from None
    return MappedRegion(region.guest_addr, region.size, region.user_addr, mem, start)


def clip_region(region: MemRegion, window: tuple[int, int]) -> MemRegion | None:
    """The part of ``region`` inside the guest-physical ``window`` (base,
    size), with its front-end address and file offset moved along; None
    when they do not meet. Mapping only that part is how a back-end behind
    a restricted DMA pool is kept from the rest of guest memory: the bytes
    outside are never in its address space."""
    lo = max(region.guest_addr, window[0])
    hi = min(region.guest_addr + region.size, window[0] + window[1])
    if lo >= hi:
        return None
    skip = lo - region.guest_addr
    return MemRegion(lo, hi - lo, region.user_addr + skip, region.mmap_offset + skip)


class RegionTable:
    """The back-end's view of guest memory: only what it was given (and,
    with a window, only the part of that inside the window)."""

    def __init__(self, mapped: list[MappedRegion] | None = None,
                 spans: list[MemRegion] | None = None):
        self.regions: list[MappedRegion] = list(mapped or [])
        # Every region as the front-end described it: used to translate ring
        # addresses only, never to reach memory.
        self.spans: list[MemRegion] = list(spans or [])

    @classmethod
    def from_message(cls, regions: list[MemRegion], fds: list[int],
                     window: tuple[int, int] | None = None) -> "RegionTable":
        if len(fds) != len(regions):
            raise ProtocolError(f"memory table: {len(regions)} regions but {len(fds)} fds")
        validate_regions(regions)
        mapped: list[MappedRegion] = []
        try:
            for r, fd in zip(regions, fds):
                part = r if window is None else clip_region(r, window)
                if part is not None:
                    mapped.append(map_region(part, fd))
        except ProtocolError:
            for m in mapped:
                m.mem.close()
            raise
        return cls(mapped, regions)

    def close(self) -> None:
        """Unmap every region no one uses any more, so a long-running server
        keeps nothing of a front-end that has gone."""
        for r in self.regions:
            try:
                r.mem.close()
            except BufferError:
                pass  # a live view still uses it; unmapped when that view goes
        self.regions = []

    def user_to_guest(self, user_addr: int, length: int) -> int:
        """Translate a front-end virtual address range to a guest address
        (whether or not this table maps it: the device finds out when it
        tries to reach it)."""
        for r in self.spans or self.regions:
            if r.user_addr <= user_addr and user_addr + length <= r.user_addr + r.size:
                return r.guest_addr + (user_addr - r.user_addr)
        raise ProtocolError(f"front-end address {user_addr:#x}+{length} is in no shared region")

    def find_guest(self, guest_addr: int, length: int) -> MappedRegion | None:
        for r in self.regions:
            if r.guest_addr <= guest_addr and guest_addr + length <= r.guest_addr + r.size:
                return r
        return None

    def read(self, guest_addr: int, length: int) -> bytes:
        r = self.find_guest(guest_addr, length)
        if r is None:
            raise ProtocolError(f"guest address {guest_addr:#x}+{length} is not shared")
        off = r.start + guest_addr - r.guest_addr
        return r.mem[off:off + length]
