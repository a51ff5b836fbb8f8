"""What a register-level transport needs from the machine it talks to.

A ``RegisterBus`` reads and writes guest-physical addresses with an exact
access width (PCI configuration space, BARs, MMIO registers). A real machine
(QEMU driven through its gdbstub, ``device_ref.qemu.stub_bus``) may have to
stop its vCPUs for each access; ``let_run`` tells it the transport has
nothing more to say for now, so the machine, and the device models in it,
may run until the next access.

``RamWindow`` is the part of guest RAM the host maps directly: rings and
buffers are written there without the bus.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

WIDTHS = (1, 2, 4, 8)


class RegisterBus(Protocol):
    def read(self, addr: int, width: int) -> int: ...

    def write(self, addr: int, width: int, value: int) -> None: ...

    def let_run(self) -> None: ...


@dataclass
class RamWindow:
    """``buffer`` (writable, host-mapped) is guest-physical ``base`` onwards."""
    base: int
    buffer: memoryview

    @property
    def size(self) -> int:
        return self.buffer.nbytes


def natural_pieces(offset: int, length: int, widest: int = 4) -> list[tuple[int, int]]:
    """Split [offset, offset+length) into naturally aligned accesses of at
    most ``widest`` bytes: (offset, width) pairs, widest first."""
    out = []
    end = offset + length
    while offset < end:
        width = widest
        while width > 1 and (offset % width or offset + width > end):
            width //= 2
        out.append((offset, width))
        offset += width
    return out


def read_block(bus: RegisterBus, base: int, offset: int, length: int) -> bytes:
    """Bytes of a register block by naturally aligned accesses."""
    out = bytearray()
    for off, width in natural_pieces(offset, length):
        out += bus.read(base + off, width).to_bytes(width, "little")
    return bytes(out)


def write_block(bus: RegisterBus, base: int, offset: int, data: bytes) -> None:
    for off, width in natural_pieces(offset, len(data)):
        piece = data[off - offset:off - offset + width]
        bus.write(base + off, width, int.from_bytes(piece, "little"))
