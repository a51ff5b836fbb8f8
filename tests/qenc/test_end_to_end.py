"""Queue encryption end to end: reference driver and device, split and
packed, in process and over vhost-user, both directions; what the guest
memory (the VMM's view) holds; and refusals of forged buffers."""
from __future__ import annotations

import os
import random
import struct

import pytest

from device_ref.device.features import DEVICE_NEEDS_RESET
from device_ref.driver.errors import DeviceNeedsReset
from device_ref.qenc import QencAuthError
from device_ref.qenc.registers import ALGORITHMS, SIZE, WINDOW

from tests.qenc.rig import blk, rng, split_head

ALGS = ["aes-256-gcm", "chacha20-poly1305"]
F_QENC = 45


def _ram(t) -> bytes:
    return b"".join(bytes(r.buffer.view) for r in t.ram.regions)


@pytest.mark.parametrize("packed", [False, True], ids=["split", "packed"])
@pytest.mark.parametrize("swiotlb", [False, True], ids=["ram", "swiotlb"])
@pytest.mark.parametrize("algorithm", ALGS)
def test_blk_round_trip_is_encrypted_in_guest_memory(algorithm, packed, swiotlb):
    dev, dlayer, t, drv, storage = blk(algorithm, packed=packed, swiotlb=swiotlb)
    drv.init()
    try:
        assert drv.negotiated >> F_QENC & 1
        assert (drv.layout == "packed") == packed
        assert 0 in dlayer.ciphers and dlayer.ciphers[0].primitive is not None
        # A recognisable plaintext: it must reach the disk and come back, but
        # never sit in shared guest memory in the clear.
        data = (b"PLAINTEXT-MARKER" * 64)[:1024] + os.urandom(3072)
        drv.write(40, data, segments=3)
        assert storage.read(40 * 512, len(data)) == data
        assert b"PLAINTEXT-MARKER" not in _ram(t)
        assert drv.read(40, len(data), segments=2) == data
        buf = drv.alloc_guest(512)
        t.memory.write(buf.addr, bytes(512))
        drv.wait(drv.submit_read(40, buf))
        assert t.memory.read(buf.addr, 512) == data[:512]   # caller's buffer: plaintext
    finally:
        drv.shutdown()
        t.close()


def test_null_algorithm_leaves_buffers_as_they_are():
    dev, dlayer, t, drv, storage = blk("null")
    drv.init()
    try:
        data = b"NULL-ALGORITHM--" * 32
        drv.write(0, data)
        assert drv.read(0, 512) == data
        assert dlayer.ciphers[0].primitive is None
        assert dev.counters.requests == 2
        assert b"NULL-ALGORITHM--" in _ram(t)   # no protection: the VMM can read it
    finally:
        drv.shutdown()
        t.close()


@pytest.mark.parametrize("packed", [False, True], ids=["split", "packed"])
@pytest.mark.parametrize("algorithm", ALGS)
def test_rng_writable_only_queue(algorithm, packed):
    dev, dlayer, t, drv = rng(algorithm, packed=packed, seed=9)
    drv.init()
    try:
        got = drv.read(100)
        expect = random.Random(9).randbytes(100)   # the seeded device's stream
        assert got == expect
    finally:
        drv.shutdown()
        t.close()


def test_registers_read_back_zero_and_reject_late_writes():
    dev, dlayer, t, drv, storage = blk()
    drv.init()
    try:
        # zero but for the read-only algorithms bitmap: NULL, AES-256-GCM, ChaCha20-Poly1305
        assert t.read_config(WINDOW, SIZE) == bytes(ALGORITHMS) + (0b111).to_bytes(4, "little")
        t.write_config(WINDOW + 8, os.urandom(32))       # after DRIVER_OK
        assert t.read_status() & DEVICE_NEEDS_RESET
        with pytest.raises(DeviceNeedsReset):
            drv.check()
    finally:
        drv.shutdown()
        t.close()


def test_device_refuses_a_key_it_has_seen_before():
    fixed = bytes(range(32))
    dev, dlayer, t, drv, storage = blk(keygen=lambda n: fixed)
    drv.init()
    drv.write(0, bytes(512))
    with pytest.raises(DeviceNeedsReset):
        drv.init()     # a reset, then the same key again: counters would restart under it
    t.close()


def test_fresh_keys_after_every_reset():
    dev, dlayer, t, drv, storage = blk()
    ids = []
    for _ in range(3):
        drv.init()
        ids.append(dlayer.ciphers[0].key_id)
        drv.write(1, os.urandom(512))
    assert len(set(ids)) == 3
    drv.shutdown()
    t.close()


def _flip(t, addr: int) -> None:
    b = t.memory.read(addr, 1)
    t.memory.write(addr, bytes([b[0] ^ 0x01]))


@pytest.mark.parametrize("where", ["ciphertext", "tag"])
def test_device_refuses_tampered_readable_part(where):
    dev, dlayer, t, drv, storage = blk(indirect=False)
    drv.init()
    try:
        drv.write(8, b"A" * 512)

        def vmm(tr, q):
            addr, length, flags = split_head(tr, drv)
            assert not flags & 2              # the head is the sealed readable part
            _flip(tr, addr + (3 if where == "ciphertext" else length - 5))
        t.before_kick = vmm
        req = drv.submit_write(8, b"B" * 512)
        with pytest.raises(QencAuthError):            # used length 0: no authentic reply
            drv.wait(req)
        assert storage.read(8 * 512, 512) == b"A" * 512   # no plaintext acted on
        assert dlayer.rejected == 1
        assert not t.read_status() & DEVICE_NEEDS_RESET   # the device stays usable
        t.before_kick = None
        drv.write(9, b"C" * 512)                          # the next chain authenticates
        assert storage.read(9 * 512, 512) == b"C" * 512
    finally:
        drv.shutdown()
        t.close()


@pytest.mark.parametrize("where", ["ciphertext", "tag", "used_len"])
def test_driver_refuses_tampered_writable_part(where):
    dev, dlayer, t, drv, storage = blk(indirect=False)
    drv.init()
    try:
        drv.write(3, b"S" * 512)
        buf = drv.alloc_guest(512)
        t.memory.write(buf.addr, b"\0" * 512)
        req = drv.submit_read(3, buf)          # synchronous device: already used
        sealed_addr, sealed_len, _ = req.copy_back[0]
        cfg = drv.queue_config(0)
        if where == "ciphertext":
            _flip(t, sealed_addr + 10)
        elif where == "tag":
            _flip(t, sealed_addr + sealed_len - 1)
        else:   # the used ring is in shared memory too: shorten the used length
            used_idx = struct.unpack("<H", t.memory.read(cfg.device + 2, 2))[0]
            slot = cfg.device + 4 + 8 * ((used_idx - 1) % cfg.size)
            ident, length = struct.unpack("<II", t.memory.read(slot, 8))
            t.memory.write(slot, struct.pack("<II", ident, length - 1))
        with pytest.raises(QencAuthError):
            drv.wait(req)
        assert req.data is None
        assert t.memory.read(buf.addr, 512) == b"\0" * 512   # no plaintext released
    finally:
        drv.shutdown()
        t.close()


def test_vhost_user_round_trip():
    import shutil
    import tempfile
    from device_ref.devices.blk import BlkDevice, MemoryStorage
    from device_ref.driver.blk import BlkDriver
    from device_ref.driver.core import DriverOptions
    from device_ref.qenc import enable_device, enable_driver
    from device_ref.vhost_user.frontend import VhostUserTransport
    from tests.vhost_user.served import Served

    d = tempfile.mkdtemp(prefix="qe-", dir="/tmp")
    path = os.path.join(d, "blk.sock")
    storage = MemoryStorage(4 << 20)
    layers = []

    def factory():
        dev = BlkDevice(storage)
        layers.append(enable_device(dev, prestart=True))
        return dev
    served = Served(path, factory)
    t = VhostUserTransport(path, 2, ram_size=8 << 20)
    # The front-end plays the VMM: record every message it sends.
    sent = []
    request = t.frontend.conn.request

    def spy(req, payload=b"", *a, **kw):
        sent.append(bytes(payload))
        return request(req, payload, *a, **kw)
    t.frontend.conn.request = spy
    keys = []

    def keygen(n):
        keys.append(os.urandom(n))
        return keys[-1]
    try:
        for packed in (False, True):
            from tests.qenc.rig import mask
            drv = BlkDriver(t, DriverOptions(features=mask(packed), queue_size=64))
            layer = enable_driver(drv, "chacha20-poly1305")
            layer.keygen = keygen
            drv.init()
            # The threat model, shown: the key crossed the VMM in the clear.
            assert any(keys[-1] in m for m in sent)
            assert drv.negotiated >> F_QENC & 1
            data = b"VHOST-USER-PLAIN" * 512
            drv.write(16, data, segments=2)
            assert storage.read(16 * 512, len(data)) == data
            assert drv.read(16, len(data)) == data
            assert layers[-1].ciphers[0].counter == 2
            assert layers[-1].rejected == 0
            drv.shutdown()
    finally:
        t.close()
        served.close()
        shutil.rmtree(d, ignore_errors=True)


def test_driver_refuses_a_replayed_reply():
    """The VMM copies an earlier authentic reply over a later one: it was
    sealed under another counter, so the driver must not accept it."""
    dev, dlayer, t, drv, storage = blk(indirect=False)
    drv.init()
    try:
        drv.write(5, b"old!" * 128)
        first = drv.submit_read(5, 512)
        old_addr, old_len, _ = first.copy_back[0]
        old_reply = t.memory.read(old_addr, old_len)
        drv.wait(first)
        drv.write(5, b"new!" * 128)
        second = drv.submit_read(5, 512)
        addr, length, _ = second.copy_back[0]
        assert length == old_len
        t.memory.write(addr, old_reply)            # before the driver collects it
        with pytest.raises(QencAuthError):
            drv.wait(second)
        assert second.data is None
    finally:
        drv.shutdown()
        t.close()


@pytest.mark.parametrize("value", [3, 0xffffffff])
def test_reserved_algorithm_installs_nothing_and_needs_reset(value):
    # qenc.dev.reserved-algorithm
    from device_ref.qenc.registers import Commit
    dev, dlayer, t, drv, storage = blk()
    try:
        dlayer._install(Commit(queue=0, enable=1, algorithm=value, key=os.urandom(32)), setup=True)
        assert dev.status & DEVICE_NEEDS_RESET
        assert 0 not in dlayer.ciphers
    finally:
        t.close()
