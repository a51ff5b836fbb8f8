"""The queue-encryption verbs of the runner (spec/queue_encryption.vspec).

The runner plays a driver that holds the key. It
builds nonces and associated data itself (the layouts are stated here
again, not taken from the device side) and seals and opens with
``cryptography``'s AEADs, so a device is judged against the rules rather
than against the reference implementation's code.

The register block is reached where the reference runtime puts it: at
configuration offset 0xc0, which both the in-process transport and
vhost-user (VHOST_USER_SET_CONFIG) carry to the device.
"""
from __future__ import annotations

import struct
from dataclasses import dataclass, field

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM, ChaCha20Poly1305

from device_ref.transport import TransportError

from conformance.engine.core import Engine, Pending
from conformance.engine.registry import HEX, INT, TEXT, action, expectation
from conformance.outcomes import Failed, Skipped

REG_WINDOW = 0xC0          # reference runtime: where the 44-byte block sits
REG_WRITE_ONLY = 40        # key_queue, key_commit, algorithm, key: read as zero
REG_ALGORITHMS = 0x28      # le32 supported_algorithms, read-only: bit n, algorithm n installs
TAG = 16
ALGORITHMS = {"null": 0, "aes-256-gcm": 1, "chacha20-poly1305": 2}
DEFINED = 0b111            # the values the proposal defines; bits 3 to 31 are reserved
TO_DEVICE, TO_DRIVER = 0, 1


def qenc_nonce(queue: int, direction: int, counter: int) -> bytes:
    """le64 counter | le16 queue index | u8 direction | u8 0."""
    return struct.pack("<QHBB", counter, queue, direction, 0)


def qenc_aad(length: int, queue: int, direction: int, algorithm: int) -> bytes:
    """le32 plaintext length | le16 queue index | u8 direction | u8 algorithm."""
    return struct.pack("<IHBB", length, queue, direction, algorithm)


@dataclass
class QencChain:
    token: int
    queue: int
    counter: int
    nonce: bytes = b""
    aad: bytes = b""
    sealed: bytes = b""
    writable: list = field(default_factory=list)   # (addr, len, initial bytes)


@dataclass
class QencKeys:
    algorithm: int
    aead: object | None
    counters: dict = field(default_factory=dict)   # queue -> next counter
    last: QencChain | None = None


def installed_keys(e: Engine) -> QencKeys:
    if e.qenc is None or e.qenc.aead is None:
        raise Skipped("vector seals buffers before qenc_keys installed a key")
    return e.qenc


def qenc_used(e: Engine, what: str) -> tuple[QencChain, int]:
    keys = installed_keys(e)
    chain = keys.last
    if chain is None:
        raise Skipped("vector expects a qenc reply before any qenc_submit")
    e.collect()
    used = next((c.used_len for c in e.completions if c.token == chain.token), None)
    if used is None:
        raise Failed("the chain was never used", what)
    return chain, used


def listed_algorithms(e: Engine) -> int:
    """The device's supported_algorithms register."""
    try:
        return int.from_bytes(e.t.read_config(REG_WINDOW + REG_ALGORITHMS, 4), "little")
    except TransportError as exc:
        raise Skipped(f"the device has no queue-encryption registers at config offset "
                      f"{REG_WINDOW:#x} ({exc})") from None


@action("qenc_keys", alg=TEXT.one_of(*ALGORITHMS, "unsupported"), key=HEX)
def qenc_keys(e: Engine, alg: str, key: str) -> None:
    listed = listed_algorithms(e)
    if alg == "unsupported":
        # the lowest value the device does not list: reserved, or defined but not implemented
        algorithm = next((n for n in range(1, 32) if not listed >> n & 1), 32)
    else:
        algorithm = ALGORITHMS[alg]
        if not listed >> algorithm & 1:
            # a driver chooses only from the list: nothing to judge here
            raise Skipped(f"the device does not list {alg} in its supported_algorithms register "
                          f"({listed:#x})")
    raw = bytes.fromhex(key)
    if algorithm and len(raw) != 32:
        raise Skipped(f"vector gives a {len(raw)}-byte key; both ciphers take 32 bytes")
    try:
        # the device type's queues (an administration virtqueue after them is
        # not one a key is installed for)
        for q in range(e.queue_count()):
            for off, data in ((0x00, struct.pack("<H", q)), (0x04, struct.pack("<I", algorithm)),
                              (0x08, raw.ljust(32, b"\0")), (0x02, struct.pack("<H", 1))):
                e.t.write_config(REG_WINDOW + off, data)
    except TransportError as exc:
        raise Skipped(f"the device has no queue-encryption registers at config offset "
                      f"{REG_WINDOW:#x} ({exc})") from None
    aead = None
    if alg == "unsupported":
        e.qenc = QencKeys(algorithm, None)      # nothing the runner could seal with
        return
    if algorithm == 1:
        aead = AESGCM(raw)
    elif algorithm == 2:
        aead = ChaCha20Poly1305(raw)
    e.qenc = QencKeys(algorithm, aead)


@action("qenc_submit", plaintext=HEX.with_default(""), writable=INT.range(0, 1 << 20).with_default(0),
        nonce_queue=INT.range(0, 0xFFFF).with_default(None),
        direction=TEXT.one_of("to_device", "to_driver").with_default("to_device"),
        counter=INT.with_default(None),
        tamper=TEXT.one_of("none", "ciphertext", "tag", "aad").with_default("none"))
def qenc_submit(e: Engine, plaintext: str = "", writable: int = 0, nonce_queue: int | None = None,
                    direction: str = "to_device", counter: int | None = None,
                    tamper: str = "none") -> None:
    keys = installed_keys(e)
    q = e.request_queue()
    own = keys.counters.get(q.index, 0)
    keys.counters[q.index] = own + 1          # the chain spends a counter either way
    chain = QencChain(0, q.index, own)
    parts: list = []
    pt = bytes.fromhex(plaintext)
    if pt:
        nq = q.index if nonce_queue is None else nonce_queue
        d = TO_DEVICE if direction == "to_device" else TO_DRIVER
        chain.nonce = qenc_nonce(nq, d, own if counter is None else counter)
        chain.aad = qenc_aad(len(pt) + (1 if tamper == "aad" else 0), nq, d, keys.algorithm)
        sealed = bytearray(keys.aead.encrypt(chain.nonce, pt, chain.aad))
        if tamper == "ciphertext":
            sealed[0] ^= 0x01
        elif tamper == "tag":
            sealed[-1] ^= 0x80
        chain.sealed = bytes(sealed)
        parts.append(("r", chain.sealed))
    if writable or not pt:
        # writable=0 without a readable part: a writable part with no room for the tag
        parts.append(("w", writable + TAG if writable else 8))
    segs = e.segments(parts)
    chain.writable = [(a, n, d) for a, n, w, d in segs if w]
    chain.token = e.offer(q, e.descs(q, segs), segs, Pending("qenc", q.index, []))
    keys.last = chain


@expectation("qenc_sealed", nonce=TEXT, aad=TEXT, ciphertext=TEXT, tag=TEXT)
def expect_qenc_sealed(e: Engine, nonce: str, aad: str, ciphertext: str, tag: str) -> None:
    chain = installed_keys(e).last
    if chain is None or not chain.sealed:
        raise Skipped("qenc_sealed needs a qenc_submit with a plaintext before it")
    want = {"nonce": nonce, "aad": aad, "ciphertext": ciphertext, "tag": tag}
    got = {"nonce": chain.nonce.hex(), "aad": chain.aad.hex(),
           "ciphertext": chain.sealed[:-TAG].hex(), "tag": chain.sealed[-TAG:].hex()}
    for k, v in want.items():
        if got[k] != v:
            # The runner's own sealing disagrees with the vector: the
            # vector (or this runner) is wrong, not the device.
            raise Skipped(f"runner's {k} {got[k]} differs from the vector's known answer {v}")


@expectation("qenc_reply", plaintext=HEX.with_default(None), nonce=HEX.with_default(None),
             aad=HEX.with_default(None), ciphertext=HEX.with_default(None),
             tag=HEX.with_default(None))
def expect_qenc_reply(e: Engine, plaintext: str | None = None, nonce: str | None = None,
                      aad: str | None = None, ciphertext: str | None = None,
                      tag: str | None = None) -> None:
    keys = installed_keys(e)
    chain, used = qenc_used(e, "a sealed reply")
    if used < TAG:
        raise Failed(f"used length {used}", "a used length of at least 16 (a sealed reply)")
    mem = e.t.memory
    whole = b"".join(mem.read(a, n) for a, n, _d in chain.writable)
    n_plain = used - TAG
    if n_plain > len(whole) - TAG:
        raise Failed(f"used length {used} for a {len(whole)}-byte writable part",
                     "a used length within the writable part")
    # ciphertext then tag, all within the used length; nothing past it written
    raw = whole[:used]
    initial = b"".join(d for _a, _n, d in chain.writable)
    if whole[used:] != initial[used:]:
        at = used + next(i for i, (x, y) in enumerate(zip(whole[used:], initial[used:])) if x != y)
        raise Failed(f"byte {at} of the writable part changed, past used length {used}",
                     "nothing written past the used length (the tag ends it)")
    use_nonce = qenc_nonce(chain.queue, TO_DRIVER, chain.counter)
    use_aad = qenc_aad(n_plain, chain.queue, TO_DRIVER, keys.algorithm)
    if nonce is not None and use_nonce.hex() != nonce:
        raise Skipped(f"vector's reply nonce {nonce} is not the rule's {use_nonce.hex()}")
    if aad is not None and use_aad.hex() != aad:
        raise Skipped(f"vector's reply associated data {aad} is not the rule's {use_aad.hex()}")
    try:
        opened = keys.aead.decrypt(use_nonce, raw, use_aad)
    except InvalidTag:
        raise Failed("the device-writable part does not verify with the to_driver nonce of "
                     f"counter {chain.counter} and associated data {use_aad.hex()}",
                     "a reply sealed by the rules") from None
    if ciphertext is not None and raw[:-TAG].hex() != ciphertext:
        raise Failed(f"ciphertext {raw[:-TAG].hex()}", f"ciphertext {ciphertext}")
    if tag is not None and raw[-TAG:].hex() != tag:
        raise Failed(f"tag {raw[-TAG:].hex()}", f"tag {tag}")
    if plaintext is not None and opened[:n_plain].hex() != plaintext:
        raise Failed(f"reply plaintext {opened[:n_plain].hex()}", f"reply plaintext {plaintext}")


@expectation("qenc_refused")
def expect_qenc_refused(e: Engine) -> None:
    chain, used = qenc_used(e, "the buffer used with length 0")
    if used != 0:
        raise Failed(f"used length {used}", "used length 0 (buffer refused)")
    mem = e.t.memory
    for addr, n, initial in chain.writable:
        if mem.read(addr, n) != initial:
            raise Failed(f"the device wrote into the {n}-byte writable part at {addr:#x}",
                         "nothing written into a refused buffer")


@expectation("qenc_registers", what=TEXT)
def expect_qenc_registers(e: Engine, what: str) -> None:
    try:
        got = e.t.read_config(REG_WINDOW, REG_WRITE_ONLY)
    except TransportError as exc:
        raise Skipped(f"the queue-encryption registers cannot be read ({exc})") from None
    if got != bytes(len(got)):
        raise Failed(f"register bytes {got.hex()}", "every write-only register byte reads 0")


@expectation("qenc_algorithms", what=TEXT)
def expect_qenc_algorithms(e: Engine, what: str) -> None:
    listed = listed_algorithms(e)
    if not listed & 1:
        raise Failed(f"algorithms {listed:#x}", "bit 0 (NULL) set")
    if not listed & DEFINED & ~1:
        raise Failed(f"algorithms {listed:#x}", "at least one cipher (bit 1 or 2) set")
    if listed & ~DEFINED:
        raise Failed(f"algorithms {listed:#x}", "no reserved value (bits 3 to 31) set")
