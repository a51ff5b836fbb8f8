"""The algorithm numbers of the register block and their AEAD primitives.

Numbers are this project's proposal (spec/queue_encryption.vspec); the
primitives are ``cryptography``'s. Both AEADs take a 32-byte key and a
12-byte nonce and append a 16-byte tag.
"""
from __future__ import annotations

from cryptography.hazmat.primitives.ciphers.aead import AESGCM, ChaCha20Poly1305

NULL = 0
AES_256_GCM = 1
CHACHA20_POLY1305 = 2

KEY_LEN = 32
NONCE_LEN = 12
TAG_LEN = 16

NAMES = {NULL: "null", AES_256_GCM: "aes-256-gcm", CHACHA20_POLY1305: "chacha20-poly1305"}
BY_NAME = {v: k for k, v in NAMES.items()}

# The ``supported_algorithms`` register: bit n set when algorithm n can be installed.
ALL = (1 << NULL) | (1 << AES_256_GCM) | (1 << CHACHA20_POLY1305)
PREFERENCE = (AES_256_GCM, CHACHA20_POLY1305)   # a driver's fallback order


def advertises(bitmap: int, algorithm: int) -> bool:
    """Whether ``bitmap`` (the ``supported_algorithms`` register) lists ``algorithm``."""
    return 0 <= algorithm < 32 and bool(bitmap >> algorithm & 1)


def bitmap(names) -> int:
    """The register value for algorithms given by name or number (NULL always in)."""
    value = 1 << NULL
    for n in names:
        value |= 1 << number(n)
    return value


class UnknownAlgorithm(ValueError):
    """An algorithm number the register block does not define."""


def number(name_or_number: str | int) -> int:
    """The register value for an algorithm given by name or number."""
    if isinstance(name_or_number, int):
        if name_or_number not in NAMES:
            raise UnknownAlgorithm(f"algorithm {name_or_number} is not defined (0, 1, 2)")
        return name_or_number
    try:
        return BY_NAME[name_or_number]
    except KeyError:
        raise UnknownAlgorithm(f"unknown algorithm {name_or_number!r} "
                               f"(one of: {', '.join(BY_NAME)})") from None


def aead(algorithm: int, key: bytes) -> AESGCM | ChaCha20Poly1305 | None:
    """The primitive for a queue: None for NULL (no protection, no tag)."""
    if algorithm == NULL:
        return None
    if len(key) != KEY_LEN:
        raise ValueError(f"key must be {KEY_LEN} bytes, not {len(key)}")
    if algorithm == AES_256_GCM:
        return AESGCM(key)
    if algorithm == CHACHA20_POLY1305:
        return ChaCha20Poly1305(key)
    raise UnknownAlgorithm(f"algorithm {algorithm} is not defined (0, 1, 2)")
