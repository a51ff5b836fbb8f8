"""The driver side of queue encryption: fresh keys, sealing, opening.

``enable_driver(drv, algorithm)`` installs a ``DriverQenc`` as the
reference driver's ``buffer_layer``. When VIRTIO_F_QUEUE_ENCRYPTION is
negotiated the driver, between FEATURES_OK and DRIVER_OK, draws a fresh
random key for every queue and writes it to the device's registers (a key
is never reused: every initialisation, hence every device reset, draws new
ones), choosing from the algorithms the device's ``supported_algorithms`` register
lists. Each request's device-readable parts are joined and sealed into one
part with the tag at its end; its device-writable parts become one part
with 16 more bytes for the tag. On completion the first used-length bytes
of the writable part are opened (ciphertext, then the tag right after it;
nothing past the used length is read); a reply that fails its tag fails
the request with ``QencAuthError`` and no plaintext is handed back.
"""
from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass

from device_ref.driver.errors import DriverError
from device_ref.qenc import algorithms as alg
from device_ref.driver.guest_buffer import GuestBuffer
from device_ref.qenc.codec import AuthFailure, open_part, seal_part, seal_part_into
from device_ref.qenc.device_side import F_QUEUE_ENCRYPTION
from device_ref.qenc.nonce import TO_DEVICE, TO_DRIVER, nonce
from device_ref.qenc.registers import ALGORITHMS, WINDOW, program


class QencAuthError(DriverError):
    """The device-writable part of a request failed its authentication tag."""


@dataclass
class DriverCipher:
    algorithm: int
    primitive: object | None
    key_id: bytes
    counter: int = 0


@dataclass(frozen=True)
class Sealed:
    """What a request needs at completion: its counter and writable parts."""
    queue: int
    counter: int
    cipher: DriverCipher
    in_parts: tuple            # the caller's writable parts: lengths or GuestBuffers
    capacity: int              # total plaintext bytes of the writable parts


class DriverQenc:
    """Queue encryption for one ``VirtioDriver`` (its ``buffer_layer``)."""

    features = 1 << F_QUEUE_ENCRYPTION

    def __init__(self, algorithm: str | int = "aes-256-gcm", log_nonces: bool = False,
                 keygen=os.urandom) -> None:
        self.algorithm = alg.number(algorithm)    # asked for; ``chosen`` is what runs
        self.chosen = self.algorithm
        self.keygen = keygen
        self.ciphers: dict[int, DriverCipher] = {}
        self.nonce_log: list[tuple[bytes, bytes]] | None = [] if log_nonces else None
        self.auth_failures = 0

    def active(self, drv) -> bool:
        return bool(drv.negotiated >> F_QUEUE_ENCRYPTION & 1)

    # -- keys ------------------------------------------------------------
    def install(self, drv) -> None:
        """Between FEATURES_OK and DRIVER_OK: a fresh key for every queue,
        for an algorithm the device lists."""
        self.ciphers.clear()
        if not self.active(drv):
            return
        self.chosen = self.choose(self.advertised(drv))
        for q in range(len(drv.queues)):
            self.rekey(drv, q)

    @staticmethod
    def advertised(drv) -> int:
        """The device's ``supported_algorithms`` register."""
        return int.from_bytes(drv.t.read_config(WINDOW + ALGORITHMS, 4), "little")

    def choose(self, bitmap: int) -> int:
        """The algorithm asked for when the device lists it, else the first
        cipher it lists; never NULL in place of a cipher (an error instead)."""
        if alg.advertises(bitmap, self.algorithm):
            return self.algorithm
        for a in alg.PREFERENCE:
            if alg.advertises(bitmap, a):
                return a
        raise DriverError(f"the device lists no cipher in its supported_algorithms register "
                          f"({bitmap:#x}); refusing to run unprotected")

    def rekey(self, drv, queue: int) -> None:
        """Draw and install a new key for ``queue`` (initialisation, or after
        the queue was reset alone); its counter starts again at 0."""
        chosen = self.chosen
        key = self.keygen(alg.KEY_LEN) if chosen != alg.NULL else bytes(alg.KEY_LEN)
        for offset, data in program(queue, chosen, key):
            drv.t.write_config(WINDOW + offset, data)
        self.ciphers[queue] = DriverCipher(chosen, alg.aead(chosen, key),
                                           hashlib.sha256(key).digest())

    # -- requests --------------------------------------------------------
    def seal(self, drv, queue: int, out: list, in_: list, allocs: list | None = None):
        """(out, in_, context) for one request; context None leaves it unprotected.

        Without SWIOTLB the sealed part is written straight into a DMA
        allocation appended to ``allocs`` (the driver frees it with the
        request's other memory) and handed on as a ``GuestBuffer``; under
        SWIOTLB it goes back as bytes for the driver to place in the region."""
        c = self.ciphers.get(queue)
        if c is None or c.primitive is None:
            return out, in_, None
        mem = drv.t.memory
        if len(out) == 1 and isinstance(out[0], GuestBuffer):
            plaintext = mem.translate(out[0].addr, out[0].length)   # read once, no copy
        else:
            plaintext = b"".join(mem.read(p.addr, p.length) if isinstance(p, GuestBuffer) else p
                                 for p in out)
        capacity = sum(p.length if isinstance(p, GuestBuffer) else p for p in in_)
        n = c.counter
        new_out: list = []
        if len(plaintext) and allocs is not None and not drv.swiotlb:
            size = len(plaintext) + alg.TAG_LEN
            a = drv.dma.alloc(size, timeout=drv.opts.pool_wait)
            allocs.append(a)
            seal_part_into(c.primitive, c.algorithm, queue, TO_DEVICE, n, plaintext,
                           mem.translate(a.addr, size))
            new_out = [GuestBuffer(a.addr, size)]
        elif len(plaintext):
            new_out = [seal_part(c.primitive, c.algorithm, queue, TO_DEVICE, n, plaintext)]
        new_in = [capacity + alg.TAG_LEN] if capacity else []
        return new_out, new_in, Sealed(queue, n, c, tuple(in_), capacity)

    def commit(self, ctx: Sealed | None, had_readable: bool) -> None:
        """The chain was made available: its counter is spent."""
        if ctx is None:
            return
        ctx.cipher.counter = ctx.counter + 1
        if self.nonce_log is not None and had_readable:
            self.nonce_log.append((ctx.cipher.key_id, nonce(ctx.queue, TO_DEVICE, ctx.counter)))

    def open(self, drv, req) -> None:
        """Replace the completed request's sealed data by its plaintext, or fail it."""
        ctx: Sealed = req.layer_ctx
        if not ctx.capacity:
            return
        used = req.used_len or 0
        try:
            if used < alg.TAG_LEN or used - alg.TAG_LEN > ctx.capacity:
                raise AuthFailure(f"used length {used} cannot hold a tag and at most "
                                  f"{ctx.capacity} bytes")
            # ciphertext then tag: the first ``used`` bytes, nothing past them
            plain = open_part(ctx.cipher.primitive, ctx.cipher.algorithm, ctx.queue, TO_DRIVER,
                              ctx.counter, req.data[:used], used - alg.TAG_LEN)
        except AuthFailure as exc:
            self.auth_failures += 1
            req.data = None
            req.used_len = None
            req.error = QencAuthError(f"request {req.token} on queue {req.queue}: {exc}")
            return
        mem = drv.t.memory
        kept = []
        pos = 0
        for part in ctx.in_parts:
            n = part.length if isinstance(part, GuestBuffer) else part
            if isinstance(part, GuestBuffer):
                mem.write(part.addr, plain[pos:pos + n])
            else:
                kept.append(plain[pos:pos + n])
            pos += n
        req.data = b"".join(kept)
        req.used_len = used - alg.TAG_LEN
        req.writable_len = ctx.capacity


def enable_driver(drv, algorithm: str | int = "aes-256-gcm", log_nonces: bool = False
                  ) -> DriverQenc:
    """Attach queue encryption to a reference driver before ``init()``."""
    layer = DriverQenc(algorithm, log_nonces=log_nonces)
    drv.buffer_layer = layer
    return layer
