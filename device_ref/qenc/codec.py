"""Sealing and opening one part of one chain: pure functions over bytes.

A sealed part is ciphertext followed by the 16-byte tag. ``open_part``
raises ``AuthFailure`` and returns nothing when the tag does not verify, so
no plaintext of a forged part ever leaves this module.
"""
from __future__ import annotations

from cryptography.exceptions import InvalidTag

from device_ref.qenc.algorithms import TAG_LEN
from device_ref.qenc.nonce import aad, nonce


class AuthFailure(Exception):
    """The tag did not verify: tampered, replayed or misdirected data."""


def seal_part(primitive, algorithm: int, queue: int, direction: int, counter: int,
              plaintext: bytes, length: int | None = None) -> bytes:
    """Ciphertext || tag of ``plaintext``; ``length`` goes into the associated
    data (default: the plaintext length)."""
    n = len(plaintext) if length is None else length
    return primitive.encrypt(nonce(queue, direction, counter), plaintext,
                             aad(n, queue, direction, algorithm))


def seal_part_into(primitive, algorithm: int, queue: int, direction: int, counter: int,
                   plaintext, out, length: int | None = None) -> None:
    """Like ``seal_part``, written straight into ``out`` (a writable buffer of
    exactly len(plaintext) + 16 bytes, e.g. a view of guest memory). Safe on
    shared memory: the producer only writes there."""
    n = len(plaintext) if length is None else length
    primitive.encrypt_into(nonce(queue, direction, counter), plaintext,
                           aad(n, queue, direction, algorithm), out)


def open_part_into(primitive, algorithm: int, queue: int, direction: int, counter: int,
                   shared, private, out, length: int) -> None:
    """Open a sealed part that lies in shared memory (``shared``: ciphertext
    then tag) into ``out`` (``length`` bytes, the plaintext length). The part
    is first copied into ``private`` (a buffer of the same size only the
    consumer can write), so the tag check and the decryption see the same
    bytes even if the other side rewrites guest memory meanwhile; a copy
    the opener owns is the only safe input. ``out`` must be private too:
    when the tag does not verify, ``decrypt_into`` may already have written
    unauthenticated plaintext there. Raises ``AuthFailure``; then nothing of
    ``out`` may be used or released."""
    private[:] = shared
    try:
        primitive.decrypt_into(nonce(queue, direction, counter), private,
                               aad(length, queue, direction, algorithm), out)
    except InvalidTag:
        raise AuthFailure(f"tag check failed (queue {queue}, direction {direction}, "
                          f"counter {counter})") from None


def open_part(primitive, algorithm: int, queue: int, direction: int, counter: int,
              sealed: bytes, length: int | None = None) -> bytes:
    """The plaintext of a sealed part, or ``AuthFailure``."""
    if len(sealed) < TAG_LEN:
        raise AuthFailure(f"sealed part of {len(sealed)} bytes has no room for the tag")
    n = len(sealed) - TAG_LEN if length is None else length
    try:
        return primitive.decrypt(nonce(queue, direction, counter), sealed,
                                 aad(n, queue, direction, algorithm))
    except InvalidTag:
        raise AuthFailure(f"tag check failed (queue {queue}, direction {direction}, "
                          f"counter {counter})") from None
