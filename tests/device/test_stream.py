"""The driver's stream (device_ref.driver.stream): fixed-shape requests in
batches, with every protection mode, on both ring layouts, against the
loopback device, and against devices that misbehave."""
from __future__ import annotations

import os
import struct
from collections import defaultdict

import pytest

from device_ref.device import device_queue
from device_ref.devices.echo import EchoDevice
from device_ref.driver import stream as stream_module
from device_ref.driver import errors as E
from device_ref.driver.core import ALL, DriverOptions
from device_ref.driver.echo import EchoDriver
from device_ref.driver.errors import DriverError
from device_ref.qenc import QencAuthError, enable_device, enable_driver
from device_ref.ring import RingError, RingErrorCode
from device_ref.ring.backend import pair_loops
from device_ref.transport import BounceRegion
from device_ref.transport_inproc import InProcTransport

from .harness import Combo, blk_pair
from .hostile import HostileBlk

BOUNCE = BounceRegion(0x8000_1000, 4 << 20)


@pytest.fixture(autouse=True, params=["c-loops", "python-loops"])
def loops(request, monkeypatch):
    """Every test twice: with the per-request loops in C (pair_loops.c) and
    with their Python twins."""
    if request.param == "python-loops":
        monkeypatch.setattr(device_queue, "pair_loops", lambda: None)
        monkeypatch.setattr(stream_module, "pair_loops", lambda: None)
    elif pair_loops() is None:
        pytest.skip("the C pair loops are not built")
    return request.param
PACKED, SWIOTLB = 34, 44
MODES = ["none", "swiotlb", "aes-256-gcm", "chacha20-poly1305", "aes-256-gcm+swiotlb"]


class TamperingTransport(InProcTransport):
    """Plays the untrusted VMM: runs ``after_device`` once the device has
    served a kick, before the driver looks at the used ring."""

    after_device = None

    def notify(self, queue: int) -> None:
        super().notify(queue)
        if self.after_device is not None:
            self.after_device()


def echo(mode: str = "none", packed: bool = False, threaded: bool = False,
         log: bool = False, device=EchoDevice):
    swiotlb = "swiotlb" in mode
    algorithm = mode.split("+")[0] if mode.split("+")[0] not in ("none", "swiotlb") else None
    dev = device(BOUNCE if swiotlb else None)
    dlayer = enable_device(dev, log_nonces=log) if algorithm else None
    t = TamperingTransport(dev, threaded=threaded)
    features = ALL if packed else ALL & ~(1 << PACKED)
    drv = EchoDriver(t, DriverOptions(features=features, timeout=1.0))
    if algorithm:
        enable_driver(drv, algorithm, log_nonces=log)
    drv.init()
    assert drv.swiotlb == swiotlb
    assert bool(drv.negotiated >> PACKED & 1) == packed
    return dev, dlayer, t, drv


def buffers(drv, t, n: int, size: int, fill: int = 0xEE):
    pairs = []
    for _ in range(n):
        src, dst = drv.alloc_guest(size), drv.alloc_guest(size)
        t.memory.write(src.addr, os.urandom(size))
        t.memory.write(dst.addr, bytes([fill]) * size)
        pairs.append((src, dst))
    return pairs


@pytest.mark.parametrize("packed", [False, True], ids=["split", "packed"])
@pytest.mark.parametrize("mode", MODES)
def test_stream_round_trips_return_the_data(mode, packed):
    dev, _dl, t, drv = echo(mode, packed)
    st = drv.stream(0, 4096, 4096, depth=16)
    sizes = [1, 17, 512, 4096, 4000, 64] * 6           # 36 requests: more than the depth
    pairs = []
    for n in sizes:
        src, dst = drv.alloc_guest(n), drv.alloc_guest(n)
        t.memory.write(src.addr, os.urandom(n))
        pairs.append((src, dst))
    kicks = drv.counters.kicks
    assert st.run(pairs) == sizes
    for src, dst in pairs:
        assert t.memory.read(dst.addr, dst.length) == t.memory.read(src.addr, src.length)
    assert dev.counters.requests == len(sizes)
    assert drv.counters.kicks - kicks <= 3           # one per batch, not one per request
    assert st.in_flight == 0 and st.room == 16
    drv.shutdown()


@pytest.mark.parametrize("mode", ["aes-256-gcm", "chacha20-poly1305", "aes-256-gcm+swiotlb"])
def test_encrypted_stream_hands_the_device_only_ciphertext(mode):
    _dev, _dl, t, drv = echo(mode)
    st = drv.stream(0, 256, 256, depth=4)
    seen = []
    t.after_device = lambda: seen.extend(
        (t.memory.read(st._out_addr[p], 256 + 16), t.memory.read(st._in_addr[p], 256 + 16))
        for p in range(4))
    pairs = buffers(drv, t, 4, 256)
    st.run(pairs)
    plain = [t.memory.read(src.addr, 256) for src, _dst in pairs]
    for out, back in seen:
        assert not any(p in out or p in back for p in plain)
    if "swiotlb" in mode:
        for p in range(4):
            assert BOUNCE.contains(st._out_addr[p], 272) and BOUNCE.contains(st._in_addr[p], 272)


def test_swiotlb_stream_keeps_every_address_in_the_bounce_region():
    dev, _dl, t, drv = echo("swiotlb")
    st = drv.stream(0, 1024, 1024, depth=8)
    pairs = buffers(drv, t, 8, 1024)
    assert st.run(pairs) == [1024] * 8
    for p in range(8):
        assert BOUNCE.contains(st._out_addr[p], 1024) and BOUNCE.contains(st._in_addr[p], 1024)
    # the caller's buffers are ordinary RAM the device cannot reach
    assert not any(BOUNCE.contains(s.addr, 1) or BOUNCE.contains(d.addr, 1) for s, d in pairs)
    assert not dev.memory.contains(pairs[0][0].addr, 1)


@pytest.mark.parametrize("mode", ["aes-256-gcm", "chacha20-poly1305"])
def test_tampered_reply_is_refused_and_never_released(mode):
    _dev, _dl, t, drv = echo(mode)
    st = drv.stream(0, 64, 64, depth=4)
    pairs = buffers(drv, t, 4, 64, fill=0xEE)

    def flip():   # the VMM flips one ciphertext bit of the reply at position 2
        addr = st._in_addr[2] + 5
        t.memory.write(addr, bytes([t.memory.read(addr, 1)[0] ^ 1]))
    t.after_device = flip
    with pytest.raises(QencAuthError, match="failed their tags"):
        st.run(pairs)
    got = [t.memory.read(d.addr, 64) for _s, d in pairs]
    sent = [t.memory.read(s.addr, 64) for s, _d in pairs]
    assert [g == bytes(64) for g in got].count(True) == 1    # one reply wiped...
    assert drv.buffer_layer.auth_failures == 1
    assert sum(g == s for g, s in zip(got, sent)) == 3        # ...the others are right


def test_tampered_request_is_refused_by_the_device_and_fails_its_reply():
    _dev, dlayer, t, drv = echo("aes-256-gcm")
    st = drv.stream(0, 64, 64, depth=2)
    pairs = buffers(drv, t, 1, 64)

    def before_kick():
        addr = st._out_addr[0]    # a stream hands out position 0 first
        t.memory.write(addr, bytes([t.memory.read(addr, 1)[0] ^ 0x80]))
    real_notify = InProcTransport.notify
    t.notify = lambda q: (before_kick(), real_notify(t, q))
    with pytest.raises(QencAuthError):
        st.run(pairs)
    assert dlayer.rejected == 1
    assert t.memory.read(pairs[0][1].addr, 64) in (b"\xee" * 64, bytes(64))


class GappyEcho(EchoDevice):
    """Echoes a request's first 4 bytes at offset 8 of the reply: bytes 0..7
    are never written."""

    def handle(self, queue: int, io) -> int:
        io.write(8, io.read(0, 4))
        return 12


def test_bytes_the_device_never_wrote_reach_the_driver_as_zero():
    dev, _dl, t, drv = echo("aes-256-gcm", device=GappyEcho)
    st = drv.stream(0, 64, 64, depth=1)
    full = buffers(drv, t, 1, 64)
    dev.handle = lambda q, io: EchoDevice.handle(dev, q, io)   # first: fill the whole area
    assert st.run(full) == [64]
    del dev.handle
    pairs = buffers(drv, t, 1, 64, fill=0xEE)
    assert st.run(pairs) == [12]
    src, dst = pairs[0]
    reply = t.memory.read(dst.addr, 64)
    assert reply[:12] == bytes(8) + t.memory.read(src.addr, 4)   # not the last chain's bytes
    assert reply[12:] == b"\xee" * 52  # past the used length: the caller's bytes, untouched


class ShortPairEcho(EchoDevice):
    """Through handle_pair: echoes only the first 5 bytes."""

    short = False

    def handle_pair(self, queue, readable, writable):
        n = 5 if self.short else min(len(readable), len(writable))
        writable[:n] = readable[:n]
        return n


def test_handle_pair_replies_end_at_the_used_length():
    dev, _dl, t, drv = echo("chacha20-poly1305", device=ShortPairEcho)
    st = drv.stream(0, 64, 64, depth=1)
    assert st.run(buffers(drv, t, 1, 64)) == [64]      # fills the device's scratch area
    dev.short = True
    pairs = buffers(drv, t, 1, 64, fill=0xEE)
    assert st.run(pairs) == [5]
    src, dst = pairs[0]
    assert t.memory.read(dst.addr, 64) == t.memory.read(src.addr, 5) + b"\xee" * 59


def test_requests_that_do_not_fit_are_refused_whole():
    _dev, _dl, t, drv = echo("aes-256-gcm")
    st = drv.stream(0, 128, 128, depth=4)
    counter = drv.buffer_layer.ciphers[0].counter
    ok = buffers(drv, t, 2, 128)
    big = (drv.alloc_guest(129), drv.alloc_guest(128))
    with pytest.raises(DriverError, match="does not fit"):
        st.submit(ok + [big])
    assert st.room == 4 and st.in_flight == 0
    assert drv.buffer_layer.ciphers[0].counter == counter
    assert st.run(ok) == [128, 128]


def test_a_stream_queue_is_closed_to_the_safe_layer_and_vice_versa():
    _dev, _dl, _t, drv = echo()
    drv.stream(0, 64, 64)
    with pytest.raises(DriverError, match="belongs to the stream"):
        drv.submit(0, [b"x"], [1])
    with pytest.raises(DriverError, match="already belongs to the stream"):
        drv.stream(0, 64, 64)
    _dev, _dl, _t, drv = echo()
    drv.submit(0, [b"x"], [1])
    with pytest.raises(DriverError, match="already used by the safe layer"):
        drv.stream(0, 64, 64)
    with pytest.raises(DriverError, match="depth"):
        echo()[3].stream(0, 64, 64, depth=1000)


def test_stream_over_a_device_in_its_own_thread():
    _dev, _dl, t, drv = echo("aes-256-gcm", threaded=True)
    try:
        st = drv.stream(0, 2048, 2048, depth=8)
        pairs = buffers(drv, t, 40, 2048)
        assert st.run(pairs) == [2048] * 40
        assert all(t.memory.read(d.addr, 2048) == t.memory.read(s.addr, 2048) for s, d in pairs)
    finally:
        drv.shutdown()
        t.close()


CASES = [
    ("bad_id", E.BadUsedId),
    ("len_too_big", E.UsedLengthTooLarge),
    ("storm", E.NotificationStorm),
    ("needs_reset", E.DeviceNeedsReset),
    ("silent", E.RequestTimeout),
]


@pytest.mark.parametrize("swiotlb", [False, True], ids=["ram", "swiotlb"])
@pytest.mark.parametrize("mode,exc_type", CASES, ids=[c[0] for c in CASES])
def test_hostile_device_fails_the_stream_after_a_reset(mode, exc_type, swiotlb):
    dev, t, drv, _storage = blk_pair(Combo(packed=False, indirect=True, swiotlb=swiotlb),
                                     device_cls=HostileBlk, mode=mode)
    drv.opts.timeout = 0.2
    dev.evil = False
    drv.init()
    dev.driver = drv
    idle = drv.dma.in_use
    st = drv.stream(0, 16, 16, depth=4)
    if swiotlb:
        assert drv.dma.in_use > idle     # the stream's slots, from the bounce pool
    pairs = [(drv.alloc_guest(16), drv.alloc_guest(16)) for _ in range(2)]
    dev.evil = True
    with pytest.raises(exc_type):
        st.run(pairs)
    # reset first, while the driver still held the stream's memory; then released
    assert dev.held_at_reset and dev.held_at_reset[-1] >= idle
    assert t.read_status() == 0 and drv.state == "reset"
    with pytest.raises(E.DriverNotReady):
        st.submit(pairs)
    assert drv.dma.in_use == (0 if swiotlb else 4)    # only the caller's own buffers remain


def test_no_key_nonce_pair_repeats_through_streams_and_resets():
    """20,000 requests through streams, with the device reset (fresh keys,
    a new stream) every 6,000: every sealed part's (key, nonce) is unique
    and each key's counters run 0, 1, 2, ... in each direction."""
    dev, dlayer, t, drv = echo("chacha20-poly1305", log=True)
    pairs = buffers(drv, t, 32, 32)
    total = resets = 0
    st = drv.stream(0, 32, 32, depth=32)
    while total < 20_000:
        st.run(pairs)
        total += len(pairs)
        if total % 6_016 == 0:
            drv.init()
            st = drv.stream(0, 32, 32, depth=32)
            resets += 1
    sealed = drv.buffer_layer.nonce_log + dlayer.nonce_log
    assert len(sealed) == 2 * total and len(set(sealed)) == len(sealed)
    per_key = defaultdict(lambda: defaultdict(list))
    for key_id, n in sealed:
        counter, q, direction, zero = struct.unpack("<QHBB", n)
        assert (q, zero) == (0, 0)
        per_key[key_id][direction].append(counter)
    assert len(per_key) == resets + 1 and resets == 3
    for dirs in per_key.values():
        assert dirs[0] == list(range(len(dirs[0]))) == dirs[1]


@pytest.mark.parametrize("mode", ["none", "aes-256-gcm"])
def test_stream_over_vhost_user(mode, tmp_path):
    """The same stream against the loopback device served over vhost-user
    (its own thread, memory shared through memfds, kicks and calls on
    eventfds), split then packed."""
    from device_ref.vhost_user.frontend import VhostUserTransport  # noqa: PLC0415
    from tests.vhost_user.served import Served  # noqa: PLC0415

    path = str(tmp_path / "echo.sock")

    def factory():
        dev = EchoDevice()
        if mode != "none":
            enable_device(dev, prestart=True)
        return dev
    served = Served(path, factory)
    t = VhostUserTransport(path, 0xFFF0, ram_size=16 << 20)
    try:
        for packed in (False, True):
            features = ALL if packed else ALL & ~(1 << PACKED)
            drv = EchoDriver(t, DriverOptions(features=features, timeout=5.0))
            if mode != "none":
                enable_driver(drv, mode)
            drv.init()
            assert bool(drv.negotiated >> PACKED & 1) == packed
            st = drv.stream(0, 4096, 4096, depth=16)
            pairs = buffers(drv, t, 48, 4096)
            assert st.run(pairs) == [4096] * 48
            assert all(t.memory.read(d.addr, 4096) == t.memory.read(s.addr, 4096)
                       for s, d in pairs)
            for s, d in pairs:
                drv.free_guest(s)
                drv.free_guest(d)
            drv.shutdown()
    finally:
        t.close()
        served.close()


class NonceSpy:
    """Wraps an AEAD: records the nonce of every seal."""

    def __init__(self, inner) -> None:
        self.inner, self.sealed = inner, []

    def encrypt_into(self, nonce, data, aad, out):
        self.sealed.append(bytes(nonce))
        return self.inner.encrypt_into(nonce, data, aad, out)

    def encrypt(self, nonce, data, aad):
        self.sealed.append(bytes(nonce))
        return self.inner.encrypt(nonce, data, aad)

    def __getattr__(self, name):
        return getattr(self.inner, name)


def test_a_full_ring_never_makes_the_driver_seal_a_counter_twice():
    """A part sealed into guest memory has been seen; its counter must not
    be used again. With the device asleep the ring fills; the submissions
    that do not fit must fail before sealing, in the safe layer and in a
    stream alike."""
    dev, dlayer, t, drv = echo("aes-256-gcm")
    drv.opts.queue_size = 8
    drv.opts.use_indirect = False
    drv.init()
    spy = NonceSpy(drv.buffer_layer.ciphers[0].primitive)
    drv.buffer_layer.ciphers[0].primitive = spy
    t.notify = lambda q: None                # the device sleeps: nothing completes
    reqs = [drv.submit(0, [b"%d" % k * 40], [40]) for k in range(4)]   # 8 descriptors
    for _ in range(3):
        with pytest.raises(RingError) as e:
            drv.submit(0, [b"x" * 40], [40])
        assert e.value.code == RingErrorCode.QUEUE_FULL
    assert len(spy.sealed) == len(set(spy.sealed)) == 4
    del t.notify
    t.notify(0)
    for r in reqs:
        drv.wait(r)
    assert dlayer.rejected == 0 and drv.submit(0, [b"y" * 40], [40]) is not None
    assert len(spy.sealed) == len(set(spy.sealed)) == 5


def test_a_stream_seals_only_what_the_ring_takes():
    dev, dlayer, t, drv = echo("chacha20-poly1305")
    drv.opts.queue_size = 8
    drv.init()
    spy = NonceSpy(drv.buffer_layer.ciphers[0].primitive)
    drv.buffer_layer.ciphers[0].primitive = spy
    st = drv.stream(0, 64, 64, depth=8)     # eight positions, room for four chains
    t.notify = lambda q: None
    pairs = buffers(drv, t, 8, 64)
    assert st.submit(pairs) == 4 and st.submit(pairs[4:]) == 0
    assert len(spy.sealed) == 4
    del t.notify
    t.notify(0)
    assert st.run(pairs[4:]) == [64] * 4
    assert dlayer.rejected == 0 and len(spy.sealed) == len(set(spy.sealed)) == 8
    assert all(t.memory.read(d.addr, 64) == t.memory.read(s.addr, 64) for s, d in pairs)


@pytest.mark.parametrize("mode", ["aes-256-gcm", "chacha20-poly1305+swiotlb"])
def test_a_refused_request_seals_nothing_of_its_batch(mode):
    """A batch whose third request does not fit is refused before the first
    is sealed: a part sealed into guest memory has spent its counter, and
    the next batch would seal other data under it."""
    dev, dlayer, t, drv = echo(mode)
    spy = NonceSpy(drv.buffer_layer.ciphers[0].primitive)
    drv.buffer_layer.ciphers[0].primitive = spy
    st = drv.stream(0, 64, 64, depth=8)
    pairs = buffers(drv, t, 4, 64)
    too_big = (drv.alloc_guest(65), pairs[2][1])
    with pytest.raises(DriverError, match="does not fit"):
        st.submit(pairs[:2] + [too_big] + pairs[3:])
    assert spy.sealed == [] and st.room == 8 and st.in_flight == 0
    assert st.run(pairs) == [64] * 4
    assert len(spy.sealed) == len(set(spy.sealed)) == 4 and dlayer.rejected == 0
    assert all(t.memory.read(d.addr, 64) == t.memory.read(s.addr, 64) for s, d in pairs)


def test_the_last_counters_of_a_key_and_then_a_reset():
    """Counters 2**64 - 2 and 2**64 - 1 still seal and open (the device's C
    loop hands a batch that reaches the end to Python), and the driver
    refuses to go past them before sealing anything."""
    dev, dlayer, t, drv = echo("aes-256-gcm")
    st = drv.stream(0, 64, 64, depth=4)
    last = (1 << 64) - 2
    st._cipher.counter = dlayer.ciphers[0].counter = last
    pairs = buffers(drv, t, 3, 64)
    assert st.run(pairs[:2]) == [64, 64]
    assert all(t.memory.read(d.addr, 64) == t.memory.read(s.addr, 64) for s, d in pairs[:2])
    assert st._cipher.counter == dlayer.ciphers[0].counter == 1 << 64
    with pytest.raises(DriverError, match="counter is exhausted"):
        st.submit(pairs[2:])
    assert dlayer.rejected == 0 and not dev.status & 0x40
