"""``device-ref serve --pool``: a back-end that maps only a restricted DMA pool
of the guest memory it is given, refuses what lies outside, and (checking)
records every address the driver gave it. Fast: our own front-end and
driver play QEMU and Linux here; test_arm64_guest.py does it with them."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile

import pytest

from device_ref.checking.device import CheckingBlkDevice
from device_ref.device.features import F_ACCESS_PLATFORM, F_SWIOTLB
from device_ref.devices.blk import BlkDevice, MemoryStorage
from device_ref.driver.blk import BlkDriver
from device_ref.driver.core import ALL, DriverOptions
from device_ref.driver.errors import DriverError
from device_ref.restricted_pool import behind_pool
from device_ref.transport import BounceRegion
from device_ref.vhost_user import protocol as P
from device_ref.vhost_user.backend import Server
from device_ref.vhost_user.frontend import VhostUserTransport
from device_ref.vhost_user.memory import RegionTable, SharedRegion, clip_region
from device_ref.vhost_user.protocol import MemRegion
from device_ref.vhost_user.protocol import ProtocolFeature as PF
from device_ref.vhost_user.protocol import Request as R
from tests.vhost_user.served import Served

POOL = BounceRegion(0x1_0000_0000, 4 << 20)


def test_clip_keeps_only_the_window_and_moves_offsets_along():
    r = MemRegion(0x4000_0000, 0x1000_0000, 0x7F00_0000_0000, 0x2000)
    part = clip_region(r, (0x4E00_0000, 0x40_0000))
    assert part == MemRegion(0x4E00_0000, 0x40_0000, 0x7F00_0E00_0000, 0x0E00_2000)
    # A window straddling the region's end keeps the overlap only.
    assert clip_region(r, (0x4FF0_0000, 0x100_0000)).size == 0x10_0000
    assert clip_region(r, (0x5000_0000, 0x1000)) is None


def test_table_maps_the_pool_alone_but_translates_every_shared_address():
    ram = SharedRegion(0, 16 << 20)
    try:
        ram.mem[(8 << 20) - 4:(8 << 20) + 4] = b"OUTSIDE!"
        table = RegionTable.from_message([MemRegion(0, 16 << 20, 0x10_0000_0000, 0)],
                                         [ram.fd], window=(8 << 20, 4 << 20))
        try:
            (mapped,) = table.regions
            assert (mapped.guest_addr, mapped.size, len(mapped.mem)) == (8 << 20, 4 << 20, 4 << 20)
            assert table.read(8 << 20, 4) == b"IDE!"          # the pool's first bytes
            assert table.find_guest((8 << 20) - 4, 4) is None  # just below: not mapped
            assert table.find_guest(12 << 20, 1) is None       # just past the end
            # Ring addresses outside still translate; reaching them is the device's problem.
            assert table.user_to_guest(0x10_0000_0000 + 4096, 16) == 4096
        finally:
            table.close()
    finally:
        ram.close()


def _served(sock: str, devices: list):
    def factory():
        dev = behind_pool(CheckingBlkDevice(MemoryStorage(1 << 20), bounce=POOL))
        devices.append(dev)
        return dev
    return Served(sock, factory)


def _run(accept_swiotlb: bool):
    """Our driver against a pool-only checking back-end; the front-end shares
    RAM and the pool, as QEMU shares all guest RAM. Returns (device, error)."""
    work = tempfile.mkdtemp(prefix="pool-", dir="/tmp")
    sock = os.path.join(work, "blk.sock")
    devices: list = []
    served = _served(sock, devices)
    t = VhostUserTransport(sock, 2, bounce=POOL, ram_size=8 << 20)
    error = None
    try:
        mask = ALL if accept_swiotlb else ALL & ~(1 << F_SWIOTLB)
        drv = BlkDriver(t, DriverOptions(features=mask, timeout=1.0))
        try:
            drv.init()
            drv.write(8, b"\xa5" * 4096)
            assert drv.read(8, 4096) == b"\xa5" * 4096
            drv.shutdown()
        except DriverError as exc:
            error = exc
    finally:
        t.close()
        served.close()
        os.rmdir(work) if not os.listdir(work) else None
    return devices[0], served.logs, error


def test_driver_inside_the_pool_is_served_and_every_address_recorded():
    dev, logs, error = _run(accept_swiotlb=True)
    assert error is None
    assert dev.device_features() >> F_ACCESS_PLATFORM & 1
    assert not dev.check_log.violations
    rec = dev.check_log.addresses
    assert rec.outside == 0 and rec.first_outside is None
    assert rec.ranges >= 3 + 2 * 3          # three ring areas, two requests of 3 buffers
    assert rec.data_bytes == 2 * 4096
    lo, hi = rec.extents()[0][0], rec.extents()[-1][1]
    assert POOL.base <= lo and hi <= POOL.end


def test_driver_outside_the_pool_is_refused_and_judged():
    dev, logs, error = _run(accept_swiotlb=False)
    assert error is not None                 # the device never served it
    # The rings are outside the only memory it has: a ring fault, reported.
    assert any("needs reset" in line and "OUT_OF_BOUNDS" in line for line in logs)
    assert any("mapped 0x100000000+0x400000 (the pool)" in line for line in logs)
    (first, *_) = dev.check_log.of("addresses inside_region")
    assert first.evidence["what"] == "ring" and first.evidence["area"] == "desc"
    rec = dev.check_log.addresses
    assert rec.first_outside == {"addr": hex(first.evidence["addr"]), "len":
                                 first.evidence["len"], "what": "desc area"}
    assert not POOL.contains(first.evidence["addr"], 1)


def _serve_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "device_ref.cli", "serve", "--type", "blk",
                           "--socket", "/tmp/never-used.sock", *args],
                          capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("args, message", [
    (("--pool", "0x100000000:4M", "--swiotlb"), "--pool and --swiotlb exclude each other"),
    (("--pool", "4M"), "expected BASE:SIZE"),
    (("--pool", "0x4e000800:4M"), "--pool: base and size must be whole 4096-byte pages"),
    (("--pool", "0x4e000000:0"), "--pool: base and size must be whole 4096-byte pages"),
])
def test_serve_pool_bad_options_are_one_line_errors(args, message):
    proc = _serve_cli(*args)
    assert proc.returncode == 2
    assert message in proc.stderr and "Traceback" not in proc.stderr


def _protocol_offer(sock: str, pool: bool, logs: list) -> tuple[int, int | None]:
    """GET_PROTOCOL_FEATURES, then (when offered) BACKEND_REQ with its fd;
    returns the offer and the ack of SET_BACKEND_REQ_FD."""
    def factory():
        dev = BlkDevice(MemoryStorage(1 << 20), bounce=POOL)
        return behind_pool(dev) if pool else dev
    server = Server(sock, factory, log=logs.append)
    thread = server.serve_in_thread()
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    conn.settimeout(5)
    ack = None
    try:
        conn.connect(sock)
        ch = P.Channel(conn)
        ch.send(R.GET_PROTOCOL_FEATURES)
        offer = P.decode_u64(ch.recv().payload, "offer")
        if offer >> PF.BACKEND_REQ & 1:
            ch.send(R.SET_PROTOCOL_FEATURES, P.encode_u64(offer))
            a, b = socket.socketpair()
            ch.send(R.SET_BACKEND_REQ_FD, fds=[b.fileno()], need_reply=True)
            b.close()
            ack = P.decode_u64(ch.recv().payload, "ack")
            a.close()
    finally:
        conn.close()
        server.stop()
        thread.join(5)
        server.close()
    return offer, ack


def test_backend_request_channel_only_for_an_access_platform_device(tmp_path):
    # QEMU refuses an ACCESS_PLATFORM back-end without BACKEND_REQ (and REPLY_ACK).
    logs: list = []
    offer, ack = _protocol_offer(str(tmp_path / "p.sock"), pool=True, logs=logs)
    assert offer >> PF.BACKEND_REQ & 1 and offer >> PF.REPLY_ACK & 1
    assert ack == 0, logs
    offer, ack = _protocol_offer(str(tmp_path / "q.sock"), pool=False, logs=logs)
    assert not offer >> PF.BACKEND_REQ & 1 and ack is None
