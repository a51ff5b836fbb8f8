"""The device side of queue encryption: registers, keys, and the chain filter.

``enable_device(dev)`` offers VIRTIO_F_QUEUE_ENCRYPTION on a reference
device and installs a ``DeviceQenc`` as the device's ``buffer_layer``.
``VirtioDevice`` calls the layer for register accesses in its window, on
reset, and for every chain it pops (``serve``). For a queue with a key the
layer opens the device-readable part, hands the device type a plaintext
view of the chain, and seals what the device type wrote: the ciphertext of
its reply at the start of the device-writable part, the tag right after it,
and a used length that covers both, so a driver reads nothing past the used
length. A part whose tag does not verify is refused: the device type never
sees it, nothing is written, and the chain is used with length 0.
"""
from __future__ import annotations

import hashlib
from collections import OrderedDict
from dataclasses import dataclass, field, replace

from cryptography.exceptions import InvalidTag

from device_ref.device.chain import Segment
from device_ref.device.features import DRIVER_OK, FEATURES_OK, bit, has
from device_ref.qenc import algorithms as alg
from device_ref.qenc.codec import AuthFailure, PartCodec
from device_ref.qenc.nonce import COUNTER_LIMIT, TO_DEVICE, TO_DRIVER, nonce
from device_ref.qenc.registers import SIZE, WINDOW, Commit, RegisterBlock, read
from device_ref.virtio_constants import F_QUEUE_ENCRYPTION, VIRTIO_PCI_CAP_QENC_CFG



RECENT_KEYS = 64


class RecentKeys:
    """A set of key digests that keeps only the ``capacity`` latest added."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._digests: OrderedDict[bytes, None] = OrderedDict()

    def __contains__(self, digest: bytes) -> bool:
        return digest in self._digests

    def __len__(self) -> int:
        return len(self._digests)

    def add(self, digest: bytes) -> None:
        self._digests[digest] = None
        self._digests.move_to_end(digest)
        while len(self._digests) > self.capacity:
            self._digests.popitem(last=False)


@dataclass
class QueueCipher:
    """One queue's installed protection: algorithm, primitive, next counter,
    and the codecs of its two directions (None without a primitive)."""
    algorithm: int
    primitive: object | None
    key_id: bytes              # SHA-256 of the key: for logs and reuse checks, never the key
    queue: int = 0
    counter: int = 0
    opener: PartCodec | None = field(default=None, repr=False)   # the driver's parts
    sealer: PartCodec | None = field(default=None, repr=False)   # the device's parts

    def __post_init__(self) -> None:
        if self.primitive is not None:
            self.opener = PartCodec(self.primitive, self.algorithm, self.queue, TO_DEVICE)
            self.sealer = PartCodec(self.primitive, self.algorithm, self.queue, TO_DRIVER)


class PlainChain:
    """What a device type sees of an encrypted chain: the opened readable
    bytes and a writable area (the tag's room taken off), with the interface
    of ``device.chain.ChainIO``. Both are the device's private scratch
    memory, reused from chain to chain: views of them are safe to decide on
    but valid only while the device type handles this chain. Bytes of the
    area the device type never wrote read as zero when it is sealed."""

    def __init__(self, readable, area: memoryview) -> None:
        self._readable = memoryview(readable)
        self.area = area
        self.readable_len = len(readable)
        self.writable_len = len(area)
        self.written = 0
        self._defined = 0     # area[:_defined] holds written or zeroed bytes

    @property
    def readable(self) -> list[Segment]:
        return [Segment(0, self.readable_len, False)] if self.readable_len else []

    @property
    def writable(self) -> list[Segment]:
        return [Segment(0, self.writable_len, True)] if self.writable_len else []

    def read(self, offset: int, length: int) -> bytes:
        return bytes(self.read_view(offset, length))

    def read_view(self, offset: int, length: int) -> memoryview:
        offset = max(offset, 0)
        return self._readable[offset:offset + max(length, 0)]

    def read_views(self, offset: int, length: int) -> list[memoryview]:
        view = self.read_view(offset, length)
        return [view] if len(view) else []

    def write_views(self, offset: int, length: int) -> list[memoryview]:
        """The area from ``offset`` for a device type to fill in place; its
        bytes are zeroed first, so what the device type leaves unwritten is
        sealed as zero, as with ``write``. ``written`` is the caller's to report."""
        n = max(0, min(length, self.writable_len - offset))
        if not n or offset < 0:
            return []
        if offset + n > self._defined:
            start = min(self._defined, offset)
            self.area[start:offset + n] = bytes(offset + n - start)
            self._defined = offset + n
        return [self.area[offset:offset + n]]

    def write(self, offset: int, data: bytes) -> int:
        n = max(0, min(len(data), self.writable_len - offset))
        if n and offset >= 0:
            if offset > self._defined:       # a gap the device type skipped: zero it
                self.area[self._defined:offset] = bytes(offset - self._defined)
            self.area[offset:offset + n] = data[:n] if n < len(data) else data
            self._defined = max(self._defined, offset + n)
            self.written = max(self.written, offset + n)
            return n
        return 0

    def reply(self, used: int) -> memoryview:
        """The plaintext of the reply, as it is sealed: the area from its
        start to the furthest of the used length the device type reported
        and the last byte it wrote (a status byte at the end of the area
        counts), unwritten bytes before it zeroed."""
        n = min(max(used, self.written), self.writable_len)
        if self._defined < n:
            self.area[self._defined:n] = bytes(n - self._defined)
            self._defined = n
        return self.area[:n]


class DeviceQenc:
    """Queue encryption for one ``VirtioDevice`` (its ``buffer_layer``)."""

    def __init__(self, device, log_nonces: bool = False, prestart: bool = False,
                 algorithms: int = alg.ALL) -> None:
        self.device = device
        # the read-only ``supported_algorithms`` register: what a commit may choose
        self.algorithms = algorithms | 1 << alg.NULL
        # vhost-user without the STATUS protocol feature: the back-end runs the
        # status steps only when the rings start, after the front-end has
        # forwarded the register writes. With ``prestart`` those writes are
        # held (status 0) and installed when the device first runs a chain.
        self.prestart = prestart
        self.held: list[Commit] = []
        self.regs = RegisterBlock()
        self.ciphers: dict[int, QueueCipher] = {}
        # Digests of the last RECENT_KEYS keys installed (never the keys): a
        # key offered again (after a reset) would restart its counters
        # (qenc.dev.refuse-seen-key; bounded state, so only recent reuse).
        self.seen_keys = RecentKeys(RECENT_KEYS)
        self.reopened: set[int] = set()   # queues reset alone, open for a new key
        self.rejected = 0
        self.nonce_log: list[tuple[bytes, bytes]] | None = [] if log_nonces else None
        self._buffers = [bytearray(), bytearray(), bytearray()]   # see _scratch
        self._views_key: tuple[int, int] | None = None
        self._views: tuple = ()

    # -- registers -------------------------------------------------------
    @staticmethod
    def owns_config(offset: int, length: int) -> bool:
        return WINDOW <= offset and offset + length <= WINDOW + SIZE

    @staticmethod
    def pci_structure() -> tuple[int, int, int]:
        """The register block as a PCI transport announces it:
        VIRTIO_PCI_CAP_QENC_CFG, its offset in configuration space, its length."""
        return VIRTIO_PCI_CAP_QENC_CFG, WINDOW, SIZE

    def read_register(self, offset: int, length: int) -> bytes:
        """Zero but for the ``supported_algorithms`` bitmap: keys never read back."""
        return read(offset - WINDOW, length, self.algorithms)

    def _negotiated(self) -> bool:
        return has(self.device.negotiated, F_QUEUE_ENCRYPTION)

    def write_register(self, offset: int, data: bytes) -> None:
        dev = self.device
        if self.prestart and dev.status == 0:
            commit = self.regs.write(offset - WINDOW, bytes(data))
            if commit is not None:
                if commit.enable and not alg.advertises(self.algorithms, commit.algorithm):
                    dev.needs_reset(f"queue {commit.queue}: algorithm {commit.algorithm} is not "
                                    f"in the supported_algorithms register ({self.algorithms:#x})")
                    return
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
            self.ciphers[c.queue] = QueueCipher(alg.NULL, None, b"", c.queue)
            self.reopened.discard(c.queue)
            return
        if not alg.advertises(self.algorithms, c.algorithm):
            # reserved, or defined but not implemented (qenc.dev.reserved-algorithm)
            dev.needs_reset(f"queue {c.queue}: algorithm {c.algorithm} is not in the "
                            f"supported_algorithms register ({self.algorithms:#x})")
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
        self.ciphers[c.queue] = QueueCipher(c.algorithm, primitive, key_id, c.queue)
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
        c = self._cipher(queue)
        if c is None:
            return handle(queue, io)
        n = c.counter
        c.counter += 1        # the chain's position counts even when it is refused
        try:
            plain, area = self._open(c, n, io.read_view(0, io.readable_len), io.writable_len)
        except (AuthFailure, OverflowError) as exc:
            return self._refuse(queue, exc)
        chain = PlainChain(plain, area)
        used = handle(queue, chain)
        if not io.writable_len:
            return used
        return self._seal_reply(c, n, chain.reply(used), io)

    def _seal_reply(self, c: QueueCipher, n: int, reply: memoryview, io) -> int:
        """Write the sealed ``reply`` at the start of the chain's writable
        part, ciphertext then tag, and nothing after it; the used length."""
        size = len(reply) + alg.TAG_LEN
        translate = getattr(io.memory, "translate", None)
        if io.writable[0].len >= size and translate is not None:
            # it fits the first descriptor: seal straight into it (the producer only writes)
            return self._seal(c, n, reply, translate(io.writable[0].gpa, size))
        sealed = memoryview(bytearray(size))
        self._seal(c, n, reply, sealed)
        io.write(0, sealed)
        return size

    def serve_pair(self, queue: int, readable: memoryview, writable: memoryview,
                   handle_pair) -> int:
        """``serve`` for a chain of one readable and one writable descriptor
        and a device type with ``handle_pair``: the same rules without the
        chain objects (this runs for every such chain)."""
        c = self._cipher(queue)
        if c is None:
            return handle_pair(queue, readable, writable)
        n = c.counter
        c.counter = n + 1         # the chain's position counts even when it is refused
        try:
            plain, area = self._open(c, n, readable, len(writable))
        except (AuthFailure, OverflowError) as exc:
            return self._refuse(queue, exc)
        used = handle_pair(queue, plain, area)
        if not len(writable):
            return used
        if not 0 <= used <= len(area):
            raise ValueError(f"handle_pair returned {used} for a {len(area)}-byte area")
        # handle_pair wrote area[:used]: that is the reply, the tag follows it
        return self._seal(c, n, area[:used], writable[:used + alg.TAG_LEN])

    def pair_loop_args(self, queue: int, chains: int):
        """What the C loop over pairs (ring/pair_loops.c, ``serve_pairs``)
        needs to do ``serve_pair`` for up to ``chains`` chains of ``queue``:
        None when the queue runs unprotected, the cipher's tuple when it is
        encrypted, False when the Python path must run (nonces are logged,
        or the counter would run out within the batch)."""
        c = self._cipher(queue)
        if c is None:
            return None
        if self.nonce_log is not None or c.counter + chains >= COUNTER_LIMIT:
            return False
        private, plain, area = self._views or (memoryview(bytearray()),) * 3
        return (c, c.primitive.decrypt_into, c.primitive.encrypt_into, c.algorithm,
                private, plain, area, self._refuse_message, InvalidTag)

    def _refuse_message(self, queue: int, message: str) -> int:
        return self._refuse(queue, AuthFailure(message))

    def _cipher(self, queue: int) -> QueueCipher | None:
        """The queue's installed protection, or None when it runs unprotected."""
        if self.held:
            self._install_held()
        c = self.ciphers.get(queue)
        return c if c is not None and c.primitive is not None else None

    def _install_held(self) -> None:
        """vhost-user without STATUS: install the key writes held until now."""
        held, self.held = self.held, []
        if self._negotiated():
            for commit in held:
                self._install(commit, True, checked=True)

    def _open(self, c: QueueCipher, n: int, sealed,
              writable_len: int) -> tuple[memoryview, memoryview]:
        """The plaintext of the readable part ``sealed`` (empty when there is
        none) and the private area the device type writes its reply into,
        both scratch views; or ``AuthFailure`` (a forged readable part, a
        writable part too short for the tag), or ``OverflowError`` (the
        counter is past the last one the key may use)."""
        if n >= COUNTER_LIMIT:
            raise OverflowError("the 64-bit counter of this queue is exhausted")
        size = len(sealed)
        if size and size < alg.TAG_LEN:
            raise AuthFailure(f"sealed part of {size} bytes has no room for the tag")
        if writable_len and writable_len < alg.TAG_LEN:
            raise AuthFailure(f"writable part of {writable_len} bytes has no room for the tag")
        room = writable_len - alg.TAG_LEN if writable_len else 0
        if (size, room) != self._views_key:     # scratch views, kept per shape
            self._views = (self._scratch(0, size), self._scratch(1, max(size - alg.TAG_LEN, 0)),
                           self._scratch(2, room))
            self._views_key = (size, room)
        private, plain, area = self._views
        if size:
            c.opener.open_into(n, sealed, private, plain, len(plain))
        return plain, area

    def _refuse(self, queue: int, exc: Exception) -> int:
        """A chain not served: forged or malformed (used length 0, nothing
        written), or a counter run out (the device needs a reset)."""
        if isinstance(exc, OverflowError):
            self.device.needs_reset(f"queue {queue}: {exc}")
        else:
            self.rejected += 1
            self.device.record("qenc_rejected", f"queue {queue}: {exc}")
        return 0

    def _seal(self, c: QueueCipher, n: int, reply, out) -> int:
        """Seal ``reply`` into ``out`` (its length plus the tag's); returns
        the used length."""
        c.sealer.seal_into(n, reply, out)
        if self.nonce_log is not None:
            self.nonce_log.append((c.key_id, nonce(c.queue, TO_DRIVER, n)))
        return len(reply) + alg.TAG_LEN

    def _scratch(self, which: int, length: int) -> memoryview:
        """``length`` bytes of private scratch buffer ``which`` (0: a sealed
        part, 1: its plaintext, 2: the writable area), grown as needed."""
        buf = self._buffers[which]
        if len(buf) < length:
            buf = self._buffers[which] = bytearray(max(length, 2 * len(buf)))
        return memoryview(buf)[:length]


def enable_device(device, log_nonces: bool = False, prestart: bool = False,
                  algorithms: int = alg.ALL) -> DeviceQenc:
    """Offer VIRTIO_F_QUEUE_ENCRYPTION on ``device`` and attach the layer
    (``prestart=True`` for a vhost-user back-end; see ``DeviceQenc``;
    ``algorithms``: the supported_algorithms bitmap it advertises and accepts)."""
    layer = DeviceQenc(device, log_nonces=log_nonces, prestart=prestart, algorithms=algorithms)
    device.rules = replace(device.rules, offered=device.rules.offered | bit(F_QUEUE_ENCRYPTION))
    device.buffer_layer = layer
    return layer
