"""virtio-blk: request semantics over an in-memory or file-backed disk.

A request is a 16-byte header (le32 type, le32 reserved, le64 sector) in
the device-readable part, then data, and a one-byte status as the last byte
of the device-writable part. The used length the device reports is the
number of bytes it wrote into the writable part, status byte included.
"""
from __future__ import annotations

import mmap
import os
import struct
import weakref
from dataclasses import dataclass

from device_ref.device.chain import ChainIO
from device_ref.device.core import VirtioDevice
from device_ref.device.features import (F_EVENT_IDX, F_IN_ORDER, F_INDIRECT_DESC, F_RING_PACKED,
                                        F_SWIOTLB, F_VERSION_1, ID_BLOCK, bit)
from device_ref.device.negotiation import FeatureRules
from device_ref.ring.backend import blk_loops
from device_ref.ring.batch import POPPED, SEG, SEG_WRITABLE
from device_ref.ring.memory import GuestMemory as MemoryMap
from device_ref.transport import BounceRegion
from device_ref.virtio_constants import BLK_CONFIG
from device_ref.virtio_constants import BLK_F_BLK_SIZE as F_BLK_SIZE
from device_ref.virtio_constants import BLK_F_CONFIG_WCE as F_CONFIG_WCE
from device_ref.virtio_constants import BLK_F_FLUSH as F_FLUSH
from device_ref.virtio_constants import BLK_F_GEOMETRY as F_GEOMETRY
from device_ref.virtio_constants import BLK_F_MQ as F_MQ
from device_ref.virtio_constants import BLK_F_RO as F_RO
from device_ref.virtio_constants import BLK_F_SEG_MAX as F_SEG_MAX
from device_ref.virtio_constants import BLK_F_SIZE_MAX as F_SIZE_MAX
from device_ref.virtio_constants import BLK_F_TOPOLOGY as F_TOPOLOGY
from device_ref.virtio_constants import BLK_ID_LEN as ID_LEN
from device_ref.virtio_constants import BLK_S_IOERR as S_IOERR
from device_ref.virtio_constants import BLK_S_OK as S_OK
from device_ref.virtio_constants import BLK_S_UNSUPP as S_UNSUPP
from device_ref.virtio_constants import BLK_SECTOR as SECTOR
from device_ref.virtio_constants import BLK_T_FLUSH as T_FLUSH
from device_ref.virtio_constants import BLK_T_GET_ID as T_GET_ID
from device_ref.virtio_constants import BLK_T_IN as T_IN
from device_ref.virtio_constants import BLK_T_OUT as T_OUT

HEADER = struct.Struct("<IIQ")

# struct virtio_blk_config offsets of the fields this device serves.
CFG_CAPACITY = BLK_CONFIG["capacity"][0]
CFG_SIZE_MAX = BLK_CONFIG["size_max"][0]
CFG_SEG_MAX = BLK_CONFIG["seg_max"][0]
CFG_GEOMETRY = BLK_CONFIG["geometry.cylinders"][0]
CFG_BLK_SIZE = BLK_CONFIG["blk_size"][0]
CFG_TOPOLOGY = BLK_CONFIG["topology.physical_block_exp"][0]
CFG_WRITEBACK = BLK_CONFIG["writeback"][0]
CFG_NUM_QUEUES = BLK_CONFIG["num_queues"][0]
CONFIG_SIZE = 60  # through write_zeroes_may_unmap and its padding


class Storage:
    """Backing store: byte-addressed, fixed size."""
    size: int

    def read(self, offset: int, length: int) -> bytes:
        raise NotImplementedError

    def write(self, offset: int, data: bytes) -> None:
        raise NotImplementedError

    def readinto(self, offset: int, views: list) -> int:
        """Fill ``views`` (guest memory) in order from ``offset``; bytes read."""
        n = 0
        for v in views:
            data = self.read(offset + n, len(v))
            v[:len(data)] = data
            n += len(data)
            if len(data) < len(v):
                break
        return n

    def write_from(self, offset: int, views: list) -> int:
        """Store ``views`` (guest memory) in order from ``offset``; bytes written."""
        n = 0
        for v in views:
            self.write(offset + n, v)
            n += len(v)
        return n

    def fileno(self) -> int | None:
        """A file descriptor the C loop may pread/pwrite, or None."""
        return None

    def flush(self) -> None:
        pass


class FileStorage(Storage):
    """A disk image file; FLUSH is fsync, so completed flushes are durable."""

    def __init__(self, path: str, size: int | None = None) -> None:
        flags = os.O_RDWR | (os.O_CREAT if size is not None else 0)
        self.fd = os.open(path, flags, 0o600)
        if size is not None and os.fstat(self.fd).st_size < size:
            os.ftruncate(self.fd, size)
        self.size = os.fstat(self.fd).st_size if size is None else size

    def read(self, offset: int, length: int) -> bytes:
        return os.pread(self.fd, length, offset)

    def write(self, offset: int, data: bytes) -> None:
        os.pwrite(self.fd, data, offset)

    # straight between the file and guest memory: no bytes object between
    def readinto(self, offset: int, views: list) -> int:
        return os.preadv(self.fd, views, offset)

    def write_from(self, offset: int, views: list) -> int:
        return os.pwritev(self.fd, views, offset)

    def fileno(self) -> int | None:
        return self.fd

    def flush(self) -> None:
        os.fsync(self.fd)

    def close(self) -> None:
        os.close(self.fd)


class MemoryStorage(FileStorage):
    """A disk in memory: an anonymous memory file (memfd), so the C loop
    reads and writes it as it does a disk image, with ``data`` a writable
    view of its bytes for whoever set it up. Where the system has no
    memfd, a plain bytearray (and the Python loop)."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.flushes = 0
        self.fd = None       # type: ignore[assignment]
        self.data: memoryview | bytearray = bytearray(size)
        if size and hasattr(os, "memfd_create"):
            self.fd = os.memfd_create("device-ref-disk", os.MFD_CLOEXEC)
            weakref.finalize(self, os.close, self.fd)
            self._map(size)

    def _map(self, size: int) -> None:
        os.ftruncate(self.fd, size)
        self.data = memoryview(mmap.mmap(self.fd, size))

    def grow(self, size: int) -> None:
        """Make the disk at least ``size`` bytes (a resize; shrinking keeps the bytes)."""
        if size > len(self.data):
            if self.fd is None:
                self.data.extend(bytes(size - len(self.data)))   # type: ignore[union-attr]
            else:
                self.data.release()      # type: ignore[union-attr]
                self._map(size)
        self.size = size

    def read(self, offset: int, length: int) -> bytes:
        return bytes(self.data[offset:offset + length])

    def write(self, offset: int, data: bytes) -> None:
        self.data[offset:offset + len(data)] = data

    def _direct(self) -> bool:
        """Whether the file may be read and written past ``read``/``write``
        (not when a subclass changes what they do)."""
        cls = type(self)
        return (self.fd is not None and cls.read is MemoryStorage.read
                and cls.write is MemoryStorage.write)

    def readinto(self, offset: int, views: list) -> int:
        if self._direct():
            return FileStorage.readinto(self, offset, views)
        return Storage.readinto(self, offset, views)

    def write_from(self, offset: int, views: list) -> int:
        if self._direct():
            return FileStorage.write_from(self, offset, views)
        return Storage.write_from(self, offset, views)

    def fileno(self) -> int | None:
        return self.fd if self._direct() else None

    def flush(self) -> None:
        self.flushes += 1

    def close(self) -> None:
        pass     # the memory file closes when the storage is collected


@dataclass(frozen=True)
class BlkOptions:
    seg_max: int = 126
    blk_size: int = SECTOR
    read_only: bool = False
    flush: bool = True
    serial: bytes = b"device-ref-blk"
    queue_size: int = 256


def blk_config(capacity_sectors: int, opts: BlkOptions) -> bytes:
    cfg = bytearray(CONFIG_SIZE)
    struct.pack_into("<Q", cfg, CFG_CAPACITY, capacity_sectors)
    struct.pack_into("<I", cfg, CFG_SEG_MAX, opts.seg_max)
    struct.pack_into("<I", cfg, CFG_BLK_SIZE, opts.blk_size)
    struct.pack_into("<H", cfg, CFG_NUM_QUEUES, 1)
    return bytes(cfg)


RING_FEATURES = (bit(F_VERSION_1) | bit(F_INDIRECT_DESC) | bit(F_EVENT_IDX)
                 | bit(F_RING_PACKED) | bit(F_IN_ORDER))


class BlkDevice(VirtioDevice):
    def __init__(self, storage: Storage, opts: BlkOptions = BlkOptions(),
                 bounce: BounceRegion | None = None, require_swiotlb: bool = False,
                 offer: int | None = None) -> None:
        self.storage = storage
        self.opts = opts
        self._loop_cache = None   # (queue, blk loop or None, fd): see serve_leading
        offered = RING_FEATURES | bit(F_SEG_MAX) | bit(F_BLK_SIZE)
        if opts.flush:
            offered |= bit(F_FLUSH)
        if opts.read_only:
            offered |= bit(F_RO)
        if bounce is not None:
            offered |= bit(F_SWIOTLB)
        if offer is not None:
            offered &= offer
        required = bit(F_VERSION_1) | (bit(F_SWIOTLB) if require_swiotlb else 0)
        super().__init__(ID_BLOCK, num_queues=1, queue_size=opts.queue_size,
                         rules=FeatureRules(offered=offered, required=required),
                         config=blk_config(storage.size // SECTOR, opts), bounce=bounce)

    @property
    def capacity(self) -> int:
        return self.storage.size // SECTOR

    def resize(self, capacity_sectors: int) -> None:
        """Change capacity (a config change the driver is told about)."""
        self.update_config(CFG_CAPACITY, struct.pack("<Q", capacity_sectors))

    def handle(self, queue: int, io: ChainIO) -> int:
        if io.writable_len == 0:
            self.record("violation", "blk request without a writable status byte")
            return 0
        status_at = io.writable_len - 1
        status, data_written = self._execute(io, status_at)
        io.write(status_at, bytes([status]))
        return data_written + 1

    def _execute(self, io: ChainIO, data_len_in: int) -> tuple[int, int]:
        """Carry out the request; returns (status, data bytes written)."""
        try:
            return self._carry_out(io, data_len_in)
        except OSError as exc:
            # A failing backing file is the device's I/O error, not a crash.
            self.record("io_error", str(exc))
            return S_IOERR, 0

    def _within_disk(self, sector: int, n: int) -> bool:
        """``n`` bytes from ``sector``: whole sectors, inside the capacity the
        config space shows and inside the backing storage."""
        cap = struct.unpack_from("<Q", self.config.read(CFG_CAPACITY, 8))[0]
        return (n % SECTOR == 0 and sector + n // SECTOR <= cap
                and sector * SECTOR + n <= self.storage.size)

    def _carry_out(self, io: ChainIO, data_len_in: int) -> tuple[int, int]:
        header = io.read(0, HEADER.size)
        if len(header) < HEADER.size:
            return S_IOERR, 0
        rtype, _reserved, sector = HEADER.unpack(header)
        if rtype == T_IN:
            n = data_len_in
            if not self._within_disk(sector, n):
                return S_IOERR, 0
            return S_OK, self.storage.readinto(sector * SECTOR, io.write_views(0, n))
        if rtype == T_OUT:
            if self.has_offered(F_RO):
                return S_IOERR, 0
            n = io.readable_len - HEADER.size
            if not self._within_disk(sector, n):
                return S_IOERR, 0
            self.storage.write_from(sector * SECTOR, io.read_views(HEADER.size, n))
            return S_OK, 0
        if rtype == T_FLUSH and self.has_offered(F_FLUSH):
            self.storage.flush()
            return S_OK, 0
        if rtype == T_GET_ID:
            ident = self.opts.serial[:ID_LEN].ljust(ID_LEN, b"\0")
            return S_OK, io.write(0, ident[:data_len_in])
        return S_UNSUPP, 0

    # -- the common request shape, straight from the popped records --------
    def serve_leading(self, queue: int, ring, index: int, seg: int, count: int) -> tuple[int, int]:
        """Serve the popped chains ``index``.. (``seg``: the first segment of
        chain ``index``) while they are reads or writes of three descriptors,
        header, data and status; return where it stopped (``count``, or a
        chain for ``handle``). The C loop (ring/blk_loops.c) when it is built
        and the storage is a file, else its Python twin below."""
        cap = struct.unpack_from("<Q", self.config.read(CFG_CAPACITY, 8))[0]
        limit = min(cap, self.storage.size // SECTOR)
        read_only = self.has_offered(F_RO)
        cached = self._loop_cache
        if cached is None or cached[0]() is not ring:
            # chosen once per queue (a weak reference: an old queue must not
            # keep guest memory mapped)
            loops, fd = blk_loops(), self.storage.fileno()
            use = loops is not None and fd is not None and type(ring.memory) is MemoryMap
            cached = self._loop_cache = (weakref.ref(ring), loops if use else None, fd)
        loops = cached[1]
        if loops is not None:
            return loops.serve_blk(ring.memory._regions, ring.batch.chains, ring.batch.segs,
                                   index, seg, count, cached[2], limit, read_only, LOOP_CONSTS)
        return self._serve_three(ring, index, seg, count, limit, read_only)

    def _serve_three(self, ring, index: int, s: int, count: int, limit: int,
                     read_only: bool) -> tuple[int, int]:
        """The Python twin of blk_loops.c's serve_blk, rule for rule."""
        batch = ring.batch
        memory = ring.memory
        records, segs = batch.chains, batch.segs
        while index < count:
            if POPPED.unpack_from(records, POPPED.size * index)[1] != 3:
                break
            (ha, hl, hf), (da, dl, df), (sa, sl, sf) = (SEG.unpack_from(segs, SEG.size * (s + k))
                                                        for k in range(3))
            if hf & SEG_WRITABLE or hl != HEADER.size or not sf & SEG_WRITABLE or sl != 1 or not dl:
                break
            if not (memory.contains(ha, hl) and memory.contains(da, dl) and memory.contains(sa, 1)):
                break
            rtype, _reserved, sector = HEADER.unpack(memory.read(ha, HEADER.size))
            reads = df & SEG_WRITABLE       # a read request: the device writes the data
            if not (rtype == T_IN and reads or rtype == T_OUT and not reads):
                break
            written = 1
            if (rtype == T_OUT and read_only or dl % SECTOR or sector > limit
                    or dl // SECTOR > limit - sector):
                status = S_IOERR
            else:
                view = memory.translate(da, dl)
                try:
                    n = (self.storage.readinto if reads else self.storage.write_from)(
                        sector * SECTOR, [view])
                except OSError:
                    break                   # handle() records the error
                status = S_OK
                written += n if reads else 0
            memory.write(sa, bytes((status,)))
            batch.set_written(index, written)
            index += 1
            s += 3
        return index, s


# what blk_loops.c is told of the block device (its one home is here)
LOOP_CONSTS = (SECTOR, T_IN, T_OUT, S_OK, S_IOERR, HEADER.size)
