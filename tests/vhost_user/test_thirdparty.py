"""Our front-end against real third-party vhost-user back-ends.

qemu-storage-daemon (vhost-user-blk) and virtiofsd (vhost-user-fs) are
independent implementations: if they accept our memory table and rings and
complete requests through them, our front-end speaks the protocol as QEMU
does.
"""
from __future__ import annotations

import os
import struct

import pytest

from device_ref.transport import BounceRegion
from device_ref.vhost_user.frontend import VhostUserTransport
from device_ref.vhost_user.protocol import ProtocolFeature as PF

from .raw_ring import F_EVENT_IDX, F_INDIRECT, F_VERSION_1, RawDevice

pytestmark = pytest.mark.thirdparty

ID_BLOCK = 2
SECTOR = 512
BLK_T_IN, BLK_T_OUT, BLK_T_GET_ID = 0, 1, 8
HDR = 0x200000          # request headers, 16 bytes apart
DATA = 0x300000         # data buffers, 4 KiB apart
STATUS = 0x280000       # status bytes


def blk_request(dev: RawDevice, token: int, rtype: int, sector: int, data_len: int,
                writable_data: bool) -> None:
    hdr = HDR + 16 * token
    data = DATA + 4096 * token
    status = STATUS + token
    dev.t.memory.write(hdr, struct.pack("<IIQ", rtype, 0, sector))
    dev.t.memory.write(status, b"\xff")
    if writable_data:
        dev.submit(0, [(hdr, 16)], [(data, data_len), (status, 1)], token)
    else:
        dev.submit(0, [(hdr, 16), (data, data_len)], [(status, 1)], token)


@pytest.mark.parametrize("queue_size", [16, 128, 1024])
def test_qsd_blk_capacity_id_and_pattern(qsd, queue_size):
    sock, disk = qsd
    t = VhostUserTransport(sock, ID_BLOCK, queue_size=queue_size, ram_size=8 << 20,
                           required_protocol=1 << PF.CONFIG)
    try:
        # The daemon offers the protocol features QEMU relies on.
        assert t.info.acked_protocol & (1 << PF.CONFIG | 1 << PF.REPLY_ACK | 1 << PF.MQ) == \
            1 << PF.CONFIG | 1 << PF.REPLY_ACK | 1 << PF.MQ
        assert t.num_queues() >= 1
        features = t.read_device_features() & (1 << F_VERSION_1 | 1 << F_INDIRECT | 1 << F_EVENT_IDX)
        assert features >> F_VERSION_1 & 1
        dev = RawDevice(t, features, queue_size)
        # capacity (le64 at offset 0 of virtio_blk_config) counts 512-byte sectors
        capacity = struct.unpack("<Q", t.read_config(0, 8))[0]
        assert capacity == os.path.getsize(disk) // SECTOR

        # GET_ID: a 20-byte device-writable buffer receives the id string
        t.memory.write(DATA, b"\xaa" * 20)
        blk_request(dev, 0, BLK_T_GET_ID, 0, 20, writable_data=True)
        dev.wait(0, {0})
        assert t.memory.read(STATUS, 1) == b"\x00"
        ident = t.memory.read(DATA, 20)
        text = ident.split(b"\0", 1)[0] if b"\0" in ident else ident
        assert text and all(0x20 <= c < 0x7f for c in text)

        # Several 4 KiB writes in flight at once, then read them all back.
        batch = min(8, queue_size // 3)  # three descriptors per request
        sectors = [8 * (3 + 97 * i) for i in range(batch)]
        patterns = {}
        for i, sector in enumerate(sectors, start=1):
            patterns[i] = os.urandom(4096)
            t.memory.write(DATA + 4096 * i, patterns[i])
            blk_request(dev, i, BLK_T_OUT, sector, 4096, writable_data=False)
        dev.wait(0, set(patterns))
        for i in patterns:
            assert t.memory.read(STATUS + i, 1) == b"\x00", f"write {i} failed"
        for i, sector in enumerate(sectors, start=1):
            t.memory.write(DATA + 4096 * i, bytes(4096))
            blk_request(dev, i, BLK_T_IN, sector, 4096, writable_data=True)
        dev.wait(0, set(patterns))
        with open(disk, "rb") as f:
            for i, sector in enumerate(sectors, start=1):
                assert t.memory.read(STATUS + i, 1) == b"\x00", f"read {i} failed"
                assert t.memory.read(DATA + 4096 * i, 4096) == patterns[i]
                f.seek(sector * SECTOR)
                assert f.read(4096) == patterns[i], "disk file does not hold the pattern"
        t.write_status(0)  # stops the ring with GET_VRING_BASE
    finally:
        t.close()


FUSE_INIT = 26
FUSE_IN_HEADER = struct.Struct("<IIQQIIII")   # len, opcode, unique, nodeid, uid, gid, pid, pad
FUSE_OUT_HEADER = struct.Struct("<IiQ")       # len, error, unique
FUSE_INIT_IN = struct.Struct("<IIII")         # major, minor, max_readahead, flags


def test_virtiofsd_fuse_init(virtiofsd):
    t = VhostUserTransport(virtiofsd, 26, num_queues=2, queue_size=128, ram_size=8 << 20)
    try:
        features = t.read_device_features()
        assert features >> F_VERSION_1 & 1
        dev = RawDevice(t, 1 << F_VERSION_1, 128, queues=2)
        body = FUSE_INIT_IN.pack(7, 31, 0x20000, 0)
        request = FUSE_IN_HEADER.pack(FUSE_IN_HEADER.size + len(body), FUSE_INIT, 1, 0, 0, 0, 0,
                                      0) + body
        t.memory.write(HDR, request)
        t.memory.write(DATA, b"\xee" * 256)
        # queue 0 is the high-priority queue; requests go to queue 1
        dev.submit(1, [(HDR, len(request))], [(DATA, 256)], 7)
        used = dev.wait(1, {7})[7]
        length, error, unique = FUSE_OUT_HEADER.unpack(t.memory.read(DATA, FUSE_OUT_HEADER.size))
        assert error == 0 and unique == 1
        assert used == length >= FUSE_OUT_HEADER.size + 8
        major, minor = struct.unpack_from("<II", t.memory.read(DATA + FUSE_OUT_HEADER.size, 8))
        assert major == 7 and minor >= 31
        t.write_status(0)
    finally:
        t.close()


@pytest.mark.parametrize("queue_size", [16, 256])
def test_reference_blk_driver_against_qsd(qsd, queue_size):
    from device_ref.driver.blk import BlkDriver
    from device_ref.driver.core import DriverOptions

    sock, disk = qsd
    t = VhostUserTransport(sock, ID_BLOCK, queue_size=queue_size, ram_size=8 << 20)
    drv = BlkDriver(t, DriverOptions(queue_size=queue_size))
    try:
        drv.init()
        assert drv.capacity == os.path.getsize(disk) // SECTOR
        ident = drv.get_id()
        assert ident and len(ident) <= 20
        patterns = {s: os.urandom(8192) for s in (0, 64, 20000)}
        for sector, data in patterns.items():
            drv.write(sector, data, segments=2)
        for sector, data in patterns.items():
            assert drv.read(sector, len(data), segments=3) == data
        drv.flush()
        with open(disk, "rb") as f:
            for sector, data in patterns.items():
                f.seek(sector * SECTOR)
                assert f.read(len(data)) == data
        drv.shutdown()
    finally:
        t.close()


def test_vhost_only_bits_are_not_shown_to_the_driver(qsd):
    sock, _ = qsd
    t = VhostUserTransport(sock, ID_BLOCK)
    try:
        # qemu-storage-daemon offers VHOST_F_LOG_ALL (26) and PROTOCOL_FEATURES (30)
        assert t.info.features >> 26 & 1 and t.info.features >> 30 & 1
        shown = t.read_device_features()
        assert not shown >> 26 & 1 and not shown >> 30 & 1
        assert shown >> F_VERSION_1 & 1
    finally:
        t.close()
    t = VhostUserTransport(sock, ID_BLOCK, bounce=BounceRegion(1 << 32, 1 << 20))
    try:
        # it offers no SWIOTLB, so no bounce region is described even if asked for
        assert t.bounce_description() is None and t.memory.bounce is None
    finally:
        t.close()
