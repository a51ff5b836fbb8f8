"""The reference virtio-blk driver on top of ``VirtioDriver``."""
from __future__ import annotations

import struct

from device_ref.device.features import ID_BLOCK, bit, has
from device_ref.devices.blk import (CFG_BLK_SIZE, CFG_CAPACITY, CFG_SEG_MAX, F_BLK_SIZE, F_FLUSH,
                                    F_RO, F_SEG_MAX, ID_LEN, SECTOR, T_FLUSH, T_GET_ID, T_IN,
                                    T_OUT)
from device_ref.driver.core import GuestBuffer, Request, VirtioDriver
from device_ref.driver.errors import BlkIOError, DriverError


def header(rtype: int, sector: int) -> bytes:
    return struct.pack("<IIQ", rtype, 0, sector)


def split_evenly(n: int, parts: int) -> list[int]:
    """``n`` bytes as ``parts`` near-equal non-empty pieces."""
    parts = max(1, min(parts, n)) if n else 1
    q, r = divmod(n, parts)
    return [q + (1 if i < r else 0) for i in range(parts)]


class BlkDriver(VirtioDriver):
    DEVICE_ID = ID_BLOCK
    DEVICE_FEATURES = bit(F_SEG_MAX) | bit(F_BLK_SIZE) | bit(F_FLUSH) | bit(F_RO)

    capacity = 0
    seg_max = 0
    blk_size = SECTOR

    def device_setup(self) -> None:
        self._read_geometry()

    def config_changed(self) -> None:
        self._read_geometry()

    def _read_geometry(self) -> None:
        self.capacity = struct.unpack("<Q", self.read_config(CFG_CAPACITY, 8))[0]
        if has(self.negotiated, F_SEG_MAX):
            self.seg_max = struct.unpack("<I", self.read_config(CFG_SEG_MAX, 4))[0]
        if has(self.negotiated, F_BLK_SIZE):
            self.blk_size = struct.unpack("<I", self.read_config(CFG_BLK_SIZE, 4))[0]

    @property
    def read_only(self) -> bool:
        return has(self.negotiated, F_RO)

    def _pieces(self, n: int, segments: int) -> list[int]:
        if self.seg_max and segments > self.seg_max:
            raise DriverError(f"{segments} data segments exceed seg_max {self.seg_max}")
        return split_evenly(n, segments)

    def _hdr_parts(self, hdr: bytes, split: tuple[int, ...] | None) -> list[bytes]:
        if not split:
            return [hdr]
        out, pos = [], 0
        for n in split:
            out.append(hdr[pos:pos + n])
            pos += n
        if pos != len(hdr):
            raise DriverError(f"header split {split} does not add up to {len(hdr)} bytes")
        return out

    # -- asynchronous requests ------------------------------------------
    def submit_read(self, sector: int, target: int | GuestBuffer, segments: int = 1,
                    header_split: tuple[int, ...] | None = None) -> Request:
        n = target.length if isinstance(target, GuestBuffer) else target
        ins: list = [target] if isinstance(target, GuestBuffer) else self._pieces(n, segments)
        return self.submit(0, self._hdr_parts(header(T_IN, sector), header_split), ins + [1])

    def submit_write(self, sector: int, data: bytes | GuestBuffer, segments: int = 1,
                     header_split: tuple[int, ...] | None = None) -> Request:
        if isinstance(data, GuestBuffer):
            outs: list = [data]
        else:
            view = memoryview(data)
            outs, pos = [], 0
            for k in self._pieces(len(data), segments):
                outs.append(bytes(view[pos:pos + k]))
                pos += k
        return self.submit(0, self._hdr_parts(header(T_OUT, sector), header_split) + outs, [1])

    @staticmethod
    def status_of(req: Request) -> int:
        """The status byte: the last byte of the driver-held writable part."""
        assert req.data is not None
        return req.data[-1]

    def finish(self, req: Request, what: str) -> bytes:
        self.wait(req)
        status = self.status_of(req)
        if status != 0:
            raise BlkIOError(status, what)
        return req.data[:-1]  # type: ignore[index]

    # -- synchronous helpers ---------------------------------------------
    def read(self, sector: int, length: int, segments: int = 1) -> bytes:
        return self.finish(self.submit_read(sector, length, segments), f"read at sector {sector}")

    def write(self, sector: int, data: bytes, segments: int = 1) -> None:
        self.finish(self.submit_write(sector, data, segments), f"write at sector {sector}")

    def flush(self) -> None:
        self.finish(self.submit(0, [header(T_FLUSH, 0)], [1]), "flush")

    def get_id(self) -> bytes:
        data = self.finish(self.submit(0, [header(T_GET_ID, 0)], [ID_LEN, 1]), "get id")
        return data.split(b"\0", 1)[0]
