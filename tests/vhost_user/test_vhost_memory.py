"""The back-end's view of shared memory: regions mapped from the fds it was
given, at their offsets, and nothing else."""
from __future__ import annotations

import os

import pytest

from device_ref.vhost_user.memory import RegionTable, SharedRegion
from device_ref.vhost_user.protocol import MemRegion, ProtocolError


def memfd_with(size: int, marks: dict[int, bytes]) -> int:
    fd = os.memfd_create("t", os.MFD_CLOEXEC)
    os.ftruncate(fd, size)
    for off, data in marks.items():
        os.pwrite(fd, data, off)
    return fd


def test_two_regions_from_one_file_at_different_offsets():
    # How QEMU shares RAM split around a hole: one memfd, two regions.
    fd = memfd_with(2 << 20, {0x10: b"low", (1 << 20) + 0x20: b"high"})
    regions = [MemRegion(0, 1 << 20, 0x7f0000000000, 0),
               MemRegion(1 << 32, 1 << 20, 0x7f0000100000, 1 << 20)]
    fds = [fd, os.dup(fd)]
    table = RegionTable.from_message(regions, fds)
    for f in fds:
        os.close(f)  # the mappings keep the memory
    try:
        assert table.read(0x10, 3) == b"low"
        assert table.read((1 << 32) + 0x20, 4) == b"high"
        assert table.user_to_guest(0x7f0000100020, 4) == (1 << 32) + 0x20
        assert table.find_guest(1 << 20, 1) is None          # the hole is not shared
        with pytest.raises(ProtocolError):
            table.read((1 << 20) - 2, 4)                     # straddles a region's end
    finally:
        table.close()


def test_offset_that_is_not_page_aligned():
    fd = memfd_with(3 * 4096, {4096 + 100: b"here"})
    table = RegionTable.from_message([MemRegion(0x5000, 4096, 0x1000, 4096 + 96)], [fd])
    os.close(fd)
    try:
        assert table.read(0x5000 + 4, 4) == b"here"
    finally:
        table.close()


def test_writes_reach_the_front_end_and_nothing_else():
    ram = SharedRegion(0, 1 << 20)
    fd = os.dup(ram.fd)
    table = RegionTable.from_message([ram.describe()], [fd])
    os.close(fd)
    try:
        table.regions[0].view()[0x100:0x104] = b"abcd"
        assert ram.view(0x100, 4).tobytes() == b"abcd"      # same pages, other process view
    finally:
        table.close()
        ram.close()


@pytest.mark.parametrize("regions, fds, message", [
    ([MemRegion(0, 4096, 0, 0)], 2, "1 regions but 2 fds"),
    ([MemRegion(0, 8192, 0, 0)], 1, "lies beyond its file"),
    ([MemRegion(0, 4096, 0, 0), MemRegion(0, 4096, 8192, 0)], 2, "overlap in guest"),
])
def test_bad_tables(regions, fds, message):
    files = [memfd_with(4096, {}) for _ in range(fds)]
    try:
        with pytest.raises(ProtocolError, match=message):
            RegionTable.from_message(regions, files)
    finally:
        for f in files:
            os.close(f)
