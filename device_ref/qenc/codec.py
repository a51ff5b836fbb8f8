"""Sealing and opening one part of one chain: pure functions over bytes.

A sealed part is ciphertext followed by the 16-byte tag. ``open_part``
raises ``AuthFailure`` and returns nothing when the tag does not verify, so
no plaintext of a forged part ever leaves this module.
"""
from __future__ import annotations

from cryptography.exceptions import InvalidTag

from device_ref.qenc.algorithms import TAG_LEN
from device_ref.qenc.nonce import AAD_LAYOUT, COUNTER_LIMIT, NONCE_LAYOUT, aad, nonce


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


class PartCodec:
    """Sealing into and opening from guest memory, for the parts of one
    queue in one direction under one key, as data paths do it for every
    buffer: the nonces and associated data of ``seal_part``, with the fixed
    fields bound once and the associated data of recent lengths kept."""

    __slots__ = ("queue", "direction", "algorithm", "_encrypt_into", "_decrypt_into", "_aads")

    def __init__(self, primitive, algorithm: int, queue: int, direction: int) -> None:
        self.queue = queue
        self.direction = direction
        self.algorithm = algorithm
        self._encrypt_into = primitive.encrypt_into
        self._decrypt_into = primitive.decrypt_into
        self._aads: dict[int, bytes] = {}

    def _aad(self, length: int) -> bytes:
        a = self._aads.get(length)
        if a is None:
            if len(self._aads) >= 64:      # lengths vary: keep the cache small
                self._aads.clear()
            a = self._aads[length] = AAD_LAYOUT.pack(length, self.queue, self.direction,
                                                     self.algorithm)
        return a

    def seal_into(self, counter: int, plaintext, out, length: int | None = None) -> None:
        """``seal_part_into`` (raises OverflowError past the 64-bit counter)."""
        if counter >= COUNTER_LIMIT:
            raise OverflowError("the 64-bit counter of this queue is exhausted; reset and rekey")
        self._encrypt_into(NONCE_LAYOUT.pack(counter, self.queue, self.direction), plaintext,
                           self._aad(len(plaintext) if length is None else length), out)

    def open_into(self, counter: int, shared, private, out, length: int) -> None:
        """Open a sealed part that lies in shared memory (``shared``:
        ciphertext then tag) into ``out`` (``length`` bytes, the plaintext
        length). The part is first copied into ``private`` (a buffer of the
        same size only the consumer can write), so the tag check and the
        decryption see the same bytes even if the other side rewrites guest
        memory meanwhile; a copy the opener owns is the only safe input.
        ``out`` must be private too: when the tag does not verify,
        ``decrypt_into`` may already have written unauthenticated plaintext
        there. Raises ``AuthFailure``; then nothing of ``out`` may be used
        or released. (pair_loops.c follows the same rule.)"""
        if counter >= COUNTER_LIMIT:
            raise OverflowError("the 64-bit counter of this queue is exhausted; reset and rekey")
        private[:] = shared
        try:
            self._decrypt_into(NONCE_LAYOUT.pack(counter, self.queue, self.direction), private,
                               self._aad(length), out)
        except InvalidTag:
            raise AuthFailure(f"tag check failed (queue {self.queue}, direction "
                              f"{self.direction}, counter {counter})") from None
