"""The pure parts of device_ref.qenc: nonce and associated-data layouts,
sealing and opening, the register block's staging and commit."""
from __future__ import annotations

import os
import struct

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM, ChaCha20Poly1305

from device_ref.qenc import algorithms as alg
from device_ref.qenc.codec import AuthFailure, open_part, seal_part, seal_part_into
from device_ref.qenc.nonce import aad, nonce
from device_ref.qenc.registers import ALGORITHMS, SIZE, WRITABLE, RegisterBlock, program, read


def test_nonce_and_aad_layouts_follow_the_spec():
    # nonce: le64 counter | le16 queue | u8 direction | u8 0
    assert nonce(3, 1, 0x0102030405060708) == bytes.fromhex("0807060504030201" "0300" "01" "00")
    # aad: le32 length | le16 queue | u8 direction | u8 algorithm
    assert aad(0x11223344, 2, 0, 1) == bytes.fromhex("44332211" "0200" "00" "01")
    with pytest.raises(OverflowError):
        nonce(0, 0, 1 << 64)


@pytest.mark.parametrize("name,cls", [("aes-256-gcm", AESGCM), ("chacha20-poly1305", ChaCha20Poly1305)])
def test_seal_matches_the_primitive_and_open_refuses_any_change(name, cls):
    key = os.urandom(32)
    a = alg.number(name)
    prim = alg.aead(a, key)
    pt = os.urandom(100)
    sealed = seal_part(prim, a, 1, 0, 7, pt)
    assert sealed == cls(key).encrypt(struct.pack("<QHBB", 7, 1, 0, 0), pt,
                                      struct.pack("<IHBB", 100, 1, 0, a))
    into = bytearray(len(sealed))
    seal_part_into(prim, a, 1, 0, 7, pt, into)
    assert bytes(into) == sealed
    assert open_part(prim, a, 1, 0, 7, sealed) == pt
    for queue, direction, counter, length in ((2, 0, 7, None), (1, 1, 7, None), (1, 0, 8, None),
                                              (1, 0, 7, 99)):
        with pytest.raises(AuthFailure):
            open_part(prim, a, queue, direction, counter, sealed, length)
    flipped = bytearray(sealed)
    flipped[50] ^= 4
    with pytest.raises(AuthFailure):
        open_part(prim, a, 1, 0, 7, bytes(flipped))
    with pytest.raises(AuthFailure):
        open_part(prim, a, 1, 0, 7, sealed[:15])


def test_algorithm_numbers_and_refusals():
    assert [alg.number(n) for n in ("null", "aes-256-gcm", "chacha20-poly1305")] == [0, 1, 2]
    assert alg.aead(alg.NULL, b"") is None
    with pytest.raises(alg.UnknownAlgorithm):
        alg.number("rot13")
    with pytest.raises(alg.UnknownAlgorithm):
        alg.aead(3, bytes(32))
    with pytest.raises(ValueError):
        alg.aead(alg.AES_256_GCM, bytes(16))


def test_register_block_commits_on_queue_enable_and_wipes_the_key():
    regs = RegisterBlock()
    key = bytes(range(32))
    writes = program(2, alg.CHACHA20_POLY1305, key)
    assert [off for off, _ in writes][-1] == 2      # key_commit last: it commits
    commits = [regs.write(off, data) for off, data in writes]
    assert commits[:-1] == [None, None, None]
    c = commits[-1]
    assert (c.queue, c.enable, c.algorithm, c.key) == (2, 1, 2, key)
    assert bytes(regs.image) == bytes(WRITABLE)    # nothing of the key stays staged
    with pytest.raises(ValueError):
        regs.write(SIZE - 2, b"xyz")


def test_the_algorithms_register_is_read_only_and_the_rest_reads_zero():
    regs = RegisterBlock()
    assert regs.write(ALGORITHMS, b"\xff\xff\xff\xff") is None   # ignored
    assert bytes(regs.image) == bytes(WRITABLE)
    image = read(0, SIZE, alg.bitmap(["chacha20-poly1305"]))
    assert image[:ALGORITHMS] == bytes(ALGORITHMS)
    assert int.from_bytes(image[ALGORITHMS:], "little") == 0b101     # NULL always listed
    assert read(ALGORITHMS + 1, 2, 0b111) == b"\0\0" and read(ALGORITHMS, 1, 0b111) == b"\x07"
    assert alg.advertises(0b101, alg.CHACHA20_POLY1305)
    assert not alg.advertises(0b101, alg.AES_256_GCM) and not alg.advertises(0b111, 3)
    assert not alg.advertises(0xffffffff, 32)
