"""The sealed reply sits inside the used length (issue 20, point 11), and
the driver picks its cipher from the device's ``supported_algorithms`` register
(point 12): reference device and driver, checked against ``cryptography``
directly rather than against device_ref.qenc's own helpers."""
from __future__ import annotations

import os
import random
import struct

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM, ChaCha20Poly1305

from device_ref.device.features import DEVICE_NEEDS_RESET
from device_ref.devices.rng import RngDevice
from device_ref.driver.core import DriverOptions
from device_ref.driver.errors import DeviceNeedsReset, DriverError
from device_ref.driver.rng import RngDriver
from device_ref.qenc import DriverQenc, enable_device
from device_ref.qenc import algorithms as alg

from tests.qenc.rig import VmmTransport, blk, mask, split_head

KEY = bytes(range(0x40, 0x60))
PRIMITIVES = {"aes-256-gcm": (1, AESGCM), "chacha20-poly1305": (2, ChaCha20Poly1305)}


def short_rng(algorithm: str, fill: int):
    """An entropy device that fills at most ``fill`` bytes (as the spec allows)
    and a driver with a fixed key; a hook paints each writable part 0xEE."""
    dev = RngDevice(seed=3, max_fill=fill)
    enable_device(dev)
    t = VmmTransport(dev)
    drv = RngDriver(t, DriverOptions(features=mask()))
    drv.buffer_layer = DriverQenc(algorithm, keygen=lambda n: KEY)
    seen = []

    def paint(t, queue):
        addr, length, _flags = split_head(t, drv, queue)
        t.memory.write(addr, b"\xee" * length)
        seen.append((addr, length))
    t.before_kick = paint
    return dev, t, drv, seen


@pytest.mark.parametrize("algorithm", sorted(PRIMITIVES))
def test_a_short_reply_is_ciphertext_then_tag_and_nothing_past_the_used_length(algorithm):
    dev, t, drv, seen = short_rng(algorithm, fill=20)
    drv.init()
    try:
        got = drv.read(100)
        assert got == random.Random(3).randbytes(20)      # the device filled 20 of 100
        (addr, length), = seen
        assert length == 100 + 16                          # room for the reply and the tag
        raw = t.memory.read(addr, length)
        assert raw[36:] == b"\xee" * 80                    # nothing written past used = 20 + 16
        number, primitive = PRIMITIVES[algorithm]
        nonce = struct.pack("<QHBB", 0, 0, 1, 0)           # counter 0, queue 0, to the driver
        aad = struct.pack("<IHBB", 20, 0, 1, number)       # plaintext length = used - 16
        assert primitive(KEY).decrypt(nonce, raw[:36], aad) == got
    finally:
        drv.shutdown()
        t.close()


def test_an_empty_reply_is_a_lone_tag():
    dev, t, drv, seen = short_rng("aes-256-gcm", fill=0)
    drv.init()
    try:
        assert drv.read(48) == b""
        (addr, length), = seen
        raw = t.memory.read(addr, length)
        assert raw[16:] == b"\xee" * 48
        nonce = struct.pack("<QHBB", 0, 0, 1, 0)
        assert AESGCM(KEY).decrypt(nonce, raw[:16], struct.pack("<IHBB", 0, 0, 1, 1)) == b""
    finally:
        drv.shutdown()
        t.close()


def test_the_driver_takes_a_cipher_the_device_lists():
    dev, dlayer, t, drv, storage = blk("aes-256-gcm")
    dlayer.algorithms = alg.bitmap(["chacha20-poly1305"])     # no AES on this device
    drv.init()
    try:
        assert dlayer.ciphers[0].algorithm == alg.CHACHA20_POLY1305
        assert not t.read_status() & DEVICE_NEEDS_RESET
        data = os.urandom(1024)
        drv.write(3, data)
        assert drv.read(3, len(data)) == data
    finally:
        drv.shutdown()
        t.close()


def test_the_driver_will_not_run_unprotected_when_no_cipher_is_listed():
    dev, dlayer, t, drv, storage = blk("chacha20-poly1305")
    dlayer.algorithms = alg.bitmap([])                        # NULL only
    try:
        with pytest.raises(DriverError, match="no cipher"):
            drv.init()
        assert not dlayer.ciphers                              # no key was ever committed
    finally:
        t.close()


class IgnoresTheList(DriverQenc):
    """A driver that commits the cipher it was asked for, listed or not."""

    def choose(self, bitmap: int) -> int:
        return self.algorithm


@pytest.mark.parametrize("asked, listed", [("chacha20-poly1305", ["aes-256-gcm"]),
                                            ("aes-256-gcm", ["chacha20-poly1305"])])
def test_a_defined_algorithm_the_device_does_not_list_is_refused(asked, listed):
    dev, dlayer, t, drv, storage = blk()
    dlayer.algorithms = alg.bitmap(listed)
    drv.buffer_layer = IgnoresTheList(asked)
    try:
        with pytest.raises(DeviceNeedsReset):
            drv.init()
        assert 0 not in dlayer.ciphers             # nothing installed for the queue
    finally:
        t.close()
