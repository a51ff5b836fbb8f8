"""Device configuration space with a generation counter.

The device bumps the generation whenever it changes a field, so a driver
that reads a multi-byte field in several accesses can tell a torn read by
comparing the generation before and after.
"""
from __future__ import annotations

from device_ref.transport import TransportError


class ConfigSpace:
    def __init__(self, layout: bytes, writable: tuple[tuple[int, int], ...] = ()) -> None:
        self._data = bytearray(layout)
        self._writable = writable  # (offset, length) ranges the driver may write
        self.generation = 0

    def __len__(self) -> int:
        return len(self._data)

    def read(self, offset: int, length: int) -> bytes:
        self._check(offset, length)
        return bytes(self._data[offset:offset + length])

    def driver_write(self, offset: int, data: bytes) -> None:
        self._check(offset, len(data))
        if not any(o <= offset and offset + len(data) <= o + n for o, n in self._writable):
            raise TransportError(f"config bytes {offset}..{offset + len(data)} are read-only")
        self._data[offset:offset + len(data)] = data

    def reset_driver_fields(self, layout: bytes) -> None:
        """On device reset: driver-writable fields go back to their initial
        values; device-owned fields (capacity...) keep the device's state."""
        for o, n in self._writable:
            self._data[o:o + n] = layout[o:o + n]

    def device_update(self, offset: int, data: bytes) -> None:
        """A device-side change: new contents and a new generation."""
        self._check(offset, len(data))
        self._data[offset:offset + len(data)] = data
        self.generation = (self.generation + 1) & 0xFF

    def _check(self, offset: int, length: int) -> None:
        if offset < 0 or length < 0 or offset + length > len(self._data):
            raise TransportError(f"config access {offset}+{length} outside the "
                                 f"{len(self._data)}-byte configuration space")
