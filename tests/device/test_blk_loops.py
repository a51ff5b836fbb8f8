"""The block device's C loop (device_ref/ring/blk_loops.c) against its
Python twin (BlkDevice._serve_three) and against ``handle`` alone: the same
batches of requests give the same statuses, used lengths, guest memory,
disk file and device events, byte for byte; and the loop refuses malformed
arguments with an exception, never a crash."""
from __future__ import annotations

import os
import random
import struct

import pytest

from device_ref.device.core import VirtioDevice
from device_ref.devices import blk as blk_module
from device_ref.devices.blk import (LOOP_CONSTS, T_FLUSH, T_GET_ID, T_IN, T_OUT, BlkDevice,
                                    BlkOptions, FileStorage)
from device_ref.driver.blk import BlkDriver, header
from device_ref.driver.core import ALL, DriverOptions
from device_ref.ring.backend import blk_loops
from device_ref.ring.batch import PopBatch
from device_ref.ring.memory import GuestMemory
from device_ref.transport_inproc import InProcTransport

pytestmark = pytest.mark.skipif(blk_loops() is None, reason="the C blk loop is not built")

SECTORS = 64
PACKED = 34
IN_ORDER = 35


def disk(path, seed: int = 3) -> None:
    path.write_bytes(random.Random(seed).randbytes(SECTORS * 512))


def requests(drv: BlkDriver, rng: random.Random, bufs: list) -> list:
    """One batch of every kind: the loop's shape and the shapes it leaves."""
    g = drv.alloc_guest
    out = []

    def read(sector, n):
        b = g(n)
        drv.t.memory.write(b.addr, b"\xee" * n)
        bufs.append(b)
        out.append(drv.submit(0, [header(T_IN, sector)], [b, 1]))

    def write(sector, n):
        b = g(n)
        drv.t.memory.write(b.addr, rng.randbytes(n))
        bufs.append(b)
        out.append(drv.submit(0, [header(T_OUT, sector), b], [1]))

    read(0, 4096)
    write(8, 1024)
    read(8, 1024)                      # sees the write before it in the batch
    read(SECTORS - 1, 512)             # the last sector
    read(SECTORS - 1, 1024)            # past the end: IOERR
    read(2, 100)                       # not whole sectors: IOERR
    write(SECTORS, 512)                # past the end: IOERR
    read(1 << 63, 512)                 # a sector that overflows any byte offset
    out.append(drv.submit(0, [header(T_FLUSH, 0)], [1]))           # two parts: handle()
    out.append(drv.submit(0, [header(T_GET_ID, 0)], [20, 1]))
    out.append(drv.submit(0, [header(5, 0)], [512, 1]))            # unknown type
    out.append(drv.submit(0, [header(T_IN, 4)[:7], header(T_IN, 4)[7:]], [512, 1]))  # split header
    out.append(drv.submit(0, [header(T_IN, 4)], [256, 256, 1]))    # data in two parts
    out.append(drv.submit(0, [header(T_IN, 4)], [512, 2]))         # a two-byte status part
    out.append(drv.submit(0, [header(T_OUT, 4), b"\x01" * 512], [512, 1]))  # a write with room
    write(16, 4096)
    read(16, 4096)
    return out


def session(tmp_path, variant: str, monkeypatch, packed: bool = False, read_only: bool = False,
            shrink: bool = False, bad_fd: bool = False) -> dict:
    path = tmp_path / f"{variant}.img"
    disk(path)
    advanced = []      # chains the loop under test served itself
    with monkeypatch.context() as m:
        if variant == "python":
            m.setattr(blk_module, "blk_loops", lambda: None)
            twin = BlkDevice._serve_three

            def spy_twin(self, ring, index, *rest):
                end = twin(self, ring, index, *rest)
                advanced.append(end[0] - index)
                return end
            m.setattr(BlkDevice, "_serve_three", spy_twin)
        elif variant == "handle":
            m.setattr(VirtioDevice, "_own_handler", lambda self, name: None)
        else:
            real = blk_loops()

            class Spy:
                def serve_blk(self, *args):
                    end = real.serve_blk(*args)
                    advanced.append(end[0] - args[3])
                    return end
            m.setattr(blk_module, "blk_loops", lambda: Spy())
        storage = FileStorage(str(path))
        if shrink:   # the file shorter than the disk the device shows: short reads
            os.truncate(path, SECTORS * 512 - 768)
        if bad_fd:   # a descriptor that fails every pread and pwrite
            os.close(storage.fd)
            storage.fd = os.open(tmp_path, os.O_RDONLY)
        dev = BlkDevice(storage, BlkOptions(read_only=read_only))
        t = InProcTransport(dev)
        features = ALL if packed else ALL & ~(1 << PACKED)
        drv = BlkDriver(t, DriverOptions(features=features & ~(1 << IN_ORDER), timeout=1.0,
                                         use_indirect=False))
        drv.init()
        rng = random.Random(9)
        seen: dict = {"used": [], "data": [], "events": []}
        for _round in range(3):
            bufs: list = []
            with drv.kicks_held():
                reqs = requests(drv, rng, bufs)
            for r in reqs:
                drv.wait(r)
                seen["used"].append((r.used_len, r.data))
            seen["data"] += [t.memory.read(b.addr, b.length) for b in bufs]
            for b in bufs:
                drv.free_guest(b)
        seen["events"] = [(e.kind, e.detail) for e in dev.events]
        seen["requests"] = dev.counters.requests
        drv.shutdown()
        storage.close()
    seen["disk"] = path.read_bytes()
    return seen, sum(advanced)


@pytest.mark.parametrize("packed", [False, True], ids=["split", "packed"])
@pytest.mark.parametrize("kind", ["plain", "read_only", "short_file", "failing_fd"])
def test_c_loop_python_twin_and_handle_agree_byte_for_byte(tmp_path, monkeypatch, packed, kind):
    kw = {"read_only": kind == "read_only", "shrink": kind == "short_file",
          "bad_fd": kind == "failing_fd"}
    c, by_c = session(tmp_path, "c", monkeypatch, packed, **kw)
    py, by_twin = session(tmp_path, "python", monkeypatch, packed, **kw)
    plain, by_none = session(tmp_path, "handle", monkeypatch, packed, **kw)
    assert c == py == plain
    # each loop served the common shape itself (not all: the rest is handle()'s)
    assert by_none == 0
    assert 0 < by_c == by_twin < c["requests"] if kind != "failing_fd" else by_c == by_twin
    statuses = [data[-1] for _used, data in c["used"]]
    if kind == "plain":
        assert statuses.count(0) > statuses.count(1) > 0    # served, and refused where due
    disk(tmp_path / "fresh")
    assert (c["disk"] == (tmp_path / "fresh").read_bytes()) == (kind in ("read_only", "failing_fd"))
    if kind == "failing_fd":
        assert any(k == "io_error" for k, _ in c["events"])


def test_reads_land_in_guest_memory_from_the_file(tmp_path, monkeypatch):
    # the figure the loop exists for: file bytes end up in the driver's buffer
    path = tmp_path / "d.img"
    disk(path, seed=11)
    storage = FileStorage(str(path))
    dev = BlkDevice(storage)
    t = InProcTransport(dev)
    drv = BlkDriver(t, DriverOptions(timeout=1.0, use_indirect=False))
    drv.init()
    g = drv.alloc_guest(4096)
    served = []
    real = blk_module.blk_loops()

    class Spy:
        def serve_blk(self, *args):
            served.append(args[3:6])
            return real.serve_blk(*args)

    monkeypatch.setattr(blk_module, "blk_loops", lambda: Spy())
    req = drv.wait(drv.submit_read(8, g))
    assert served and req.data == b"\x00"
    assert t.memory.read(g.addr, 4096) == path.read_bytes()[8 * 512:8 * 512 + 4096]
    drv.shutdown()
    storage.close()


def test_loop_refuses_bad_arguments_without_crashing(tmp_path):
    loops = blk_loops()
    mem = GuestMemory()
    mem.add_region(0x1000, bytearray(4096))
    batch = PopBatch(4, 16)
    fd = os.open(tmp_path / "f", os.O_RDWR | os.O_CREAT)
    try:
        args = [mem._regions, batch.chains, batch.segs, 0, 0, 0, fd, SECTORS, False, LOOP_CONSTS]
        assert loops.serve_blk(*args) == (0, 0)
        for k, bad, exc in [(3, -1, ValueError), (5, 99, ValueError), (6, -5, ValueError),
                            (9, (512,), TypeError), (9, (0, 0, 1, 0, 1, 16), ValueError),
                            (0, "x", TypeError), (1, b"ro", BufferError), (7, -1, OverflowError)]:
            bad_args = list(args)
            bad_args[k] = bad
            with pytest.raises(exc):
                loops.serve_blk(*bad_args)
        with pytest.raises(TypeError):
            loops.serve_blk(*args[:9])
    finally:
        os.close(fd)


def test_loop_constants_are_the_device_types():
    assert LOOP_CONSTS == (512, T_IN, T_OUT, 0, 1, struct.calcsize("<IIQ"))
