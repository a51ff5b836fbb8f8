"""The device side of queue encryption: registers, keys, and the chain filter.

``enable_device(dev)`` offers VIRTIO_F_QUEUE_ENCRYPTION on a reference
device and installs a ``DeviceQenc`` as the device's ``buffer_layer``.
``VirtioDevice`` calls the layer for register accesses in its window, on
reset, and for every chain it pops (``serve``). For a queue with a key the
layer opens the device-readable part, hands the device type a plaintext
view of the chain, and seals what the device type wrote. A part whose tag
does not verify is refused: the device type never sees it, nothing is
written, and the chain is used with length 0.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, replace

from device_ref.device.chain import Segment
from device_ref.device.features import DRIVER_OK, FEATURES_OK, bit, has
from device_ref.qenc import algorithms as alg
from device_ref.qenc.codec import AuthFailure, open_part, seal_part, seal_part_into
from device_ref.qenc.nonce import TO_DEVICE, TO_DRIVER, nonce
from device_ref.qenc.registers import SIZE, WINDOW, Commit, RegisterBlock

F_QUEUE_ENCRYPTION = 45   # provisional: experimental, not assigned by OASIS


@dataclass
class QueueCipher:
    """One queue's installed protection: algorithm, primitive, next counter."""
    algorithm: int
    primitive: object | None
    key_id: bytes              # SHA-256 of the key: for logs and reuse checks, never the key
    counter: int = 0


class PlainChain:
    """What a device type sees of an encrypted chain: the opened readable
    bytes and a zeroed writable area (the tag's room taken off), with the
    interface of ``device.chain.ChainIO``."""

    def __init__(self, readable: bytes, writable_len: int) -> None:
        self._readable = readable
        self.area = bytearray(writable_len)
        self.readable = [Segment(0, len(readable), False)] if readable else []
        self.writable = [Segment(0, writable_len, True)] if writable_len else []
        self.readable_len = len(readable)
        self.writable_len = writable_len
        self.written = 0

    def read(self, offset: int, length: int) -> bytes:
        return self._readable[offset:offset + max(length, 0)]

    def write(self, offset: int, data: bytes) -> int:
        n = max(0, min(len(data), self.writable_len - offset))
        if n:
            self.area[offset:offset + n] = data[:n]
            self.written = max(self.written, offset + n)
        return n


class DeviceQenc:
    """Queue encryption for one ``VirtioDevice`` (its ``buffer_layer``)."""

    def __init__(self, device, log_nonces: bool = False, prestart: bool = False) -> None:
        self.device = device
        # vhost-user without the STATUS protocol feature: the back-end runs the
        # status steps only when the rings start, after the front-end has
        # forwarded the register writes. With ``prestart`` those writes are
        # held (status 0) and installed when the device first runs a chain.
        self.prestart = prestart
        self.held: list[Commit] = []
        self.regs = RegisterBlock()
        self.ciphers: dict[int, QueueCipher] = {}
        # Fingerprints of every key installed since the device was created:
        # a key offered again (after a reset) would restart its counters.
        self.seen_keys: set[bytes] = set()
        self.reopened: set[int] = set()   # queues reset alone, open for a new key
        self.rejected = 0
        self.nonce_log: list[tuple[bytes, bytes]] | None = [] if log_nonces else None

    # -- registers -------------------------------------------------------
    @staticmethod
    def owns_config(offset: int, length: int) -> bool:
        return WINDOW <= offset and offset + length <= WINDOW + SIZE

    @staticmethod
    def read_register(offset: int, length: int) -> bytes:
        return bytes(length)   # write-only: keys never read back

    def _negotiated(self) -> bool:
        return has(self.device.negotiated, F_QUEUE_ENCRYPTION)

    def write_register(self, offset: int, data: bytes) -> None:
        dev = self.device
        if self.prestart and dev.status == 0:
            commit = self.regs.write(offset - WINDOW, bytes(data))
            if commit is not None:
                if commit.enable and commit.algorithm != alg.NULL and \
                        hashlib.sha256(commit.key).digest() in self.seen_keys:
                    dev.needs_reset(f"queue {commit.queue}: key already used since the device "
                                    f"was created")
                    return
                if commit.enable and commit.algorithm != alg.NULL:
                    self.seen_keys.add(hashlib.sha256(commit.key).digest())
                self.held.append(commit)
            return
        if not self._negotiated():
            dev.record("violation", "queue-encryption register written without the feature")
            return
        setup = dev.status & FEATURES_OK and not dev.status & DRIVER_OK
        if not setup and not self.reopened:
            self.regs.wipe()
            dev.record("violation", "queue-encryption register written after DRIVER_OK")
            dev.needs_reset("queue-encryption registers written after DRIVER_OK")
            return
        commit = self.regs.write(offset - WINDOW, bytes(data))
        if commit is not None:
            self._install(commit, setup)

    def _install(self, c: Commit, setup: bool, checked: bool = False) -> None:
        dev = self.device
        if not setup and c.queue not in self.reopened:
            dev.needs_reset(f"key for running queue {c.queue} written after DRIVER_OK")
            return
        if not 0 <= c.queue < dev.num_queues():
            dev.needs_reset(f"queue_select {c.queue} names no queue")
            return
        if c.enable == 0:
            self.ciphers[c.queue] = QueueCipher(alg.NULL, None, b"")
            self.reopened.discard(c.queue)
            return
        try:
            primitive = alg.aead(c.algorithm, c.key)
        except (alg.UnknownAlgorithm, ValueError) as exc:
            dev.needs_reset(f"queue {c.queue}: {exc}")
            return
        key_id = hashlib.sha256(c.key).digest()
        if primitive is not None:
            if key_id in self.seen_keys and not checked:
                dev.needs_reset(f"queue {c.queue}: key already used since the device was created")
                return
            self.seen_keys.add(key_id)
        self.ciphers[c.queue] = QueueCipher(c.algorithm, primitive, key_id)
        self.reopened.discard(c.queue)

    # -- lifecycle -------------------------------------------------------
    def reset(self) -> None:
        """Device reset: every key and counter is gone; new keys are needed."""
        self.ciphers.clear()
        self.regs.wipe()
        self.reopened.clear()
        self.held.clear()

    def queue_reset(self, queue: int) -> None:
        """A reset of one queue (VIRTIO_F_RING_RESET): its key and counter
        are gone, and its registers accept a new key until it runs again."""
        self.ciphers.pop(queue, None)
        self.reopened.add(queue)

    # -- data path -------------------------------------------------------
    def serve(self, queue: int, io, handle) -> int:
        """Run one chain through the device type ``handle``; return the used length."""
        if self.held:
            held, self.held = self.held, []
            if self._negotiated():
                for commit in held:
                    self._install(commit, True, checked=True)
        c = self.ciphers.get(queue)
        if c is None or c.primitive is None:
            return handle(queue, io)
        n = c.counter
        c.counter += 1        # the chain's position counts even when it is refused
        try:
            readable = b""
            if io.readable_len:
                readable = open_part(c.primitive, c.algorithm, queue, TO_DEVICE, n,
                                     io.read(0, io.readable_len))
            if io.writable_len and io.writable_len < alg.TAG_LEN:
                raise AuthFailure(f"writable part of {io.writable_len} bytes has no room "
                                  f"for the tag")
        except AuthFailure as exc:
            self.rejected += 1
            self.device.record("qenc_rejected", f"queue {queue}: {exc}")
            return 0
        except OverflowError as exc:
            self.device.needs_reset(f"queue {queue}: {exc}")
            return 0
        plain = PlainChain(readable, io.writable_len - alg.TAG_LEN if io.writable_len else 0)
        used = handle(queue, plain)
        if not io.writable_len:
            return used
        translate = getattr(io.memory, "translate", None)
        if len(io.writable) == 1 and translate is not None:
            # one descriptor: seal straight into it (the producer only writes)
            seg = io.writable[0]
            seal_part_into(c.primitive, c.algorithm, queue, TO_DRIVER, n, plain.area,
                           translate(seg.gpa, seg.len), used)
        else:
            io.write(0, seal_part(c.primitive, c.algorithm, queue, TO_DRIVER, n, plain.area,
                                  used))
        if self.nonce_log is not None:
            self.nonce_log.append((c.key_id, nonce(queue, TO_DRIVER, n)))
        return used + alg.TAG_LEN


def enable_device(device, log_nonces: bool = False, prestart: bool = False) -> DeviceQenc:
    """Offer VIRTIO_F_QUEUE_ENCRYPTION on ``device`` and attach the layer
    (``prestart=True`` for a vhost-user back-end; see ``DeviceQenc``)."""
    layer = DeviceQenc(device, log_nonces=log_nonces, prestart=prestart)
    device.rules = replace(device.rules, offered=device.rules.offered | bit(F_QUEUE_ENCRYPTION))
    device.buffer_layer = layer
    return layer
