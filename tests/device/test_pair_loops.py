"""The C per-request loops (device_ref/ring/pair_loops.c) against their
Python twins: the same requests, keys and tampering give the same replies,
errors, ciphertexts and guest memory, byte for byte; and the loops refuse
malformed arguments with an exception, never a crash."""
from __future__ import annotations

import hashlib
import itertools
import random

import pytest

from device_ref.device import device_queue
from device_ref.devices.echo import EchoDevice
from device_ref.driver import stream as stream_module
from device_ref.driver.core import ALL, DriverOptions
from device_ref.driver.echo import EchoDriver
from device_ref.qenc import QencAuthError, enable_device, enable_driver
from device_ref.ring.backend import pair_loops

from .test_stream import BOUNCE, PACKED, TamperingTransport

pytestmark = pytest.mark.skipif(pair_loops() is None, reason="the C pair loops are not built")

# (out bytes, reply bytes): full, partial, tiny, one-sided, reply shorter than a tag
SHAPES = [(512, 512), (1, 1), (17, 300), (512, 16), (0, 100), (100, 0), (300, 17), (512, 500)]


def keys():
    n = itertools.count()
    return lambda size: hashlib.sha256(b"key %d" % next(n)).digest()[:size]


def run_workload(mode: str, packed: bool, python: bool, monkeypatch) -> dict:
    """One deterministic session; everything observable, for comparison."""
    with monkeypatch.context() as m:
        if python:
            m.setattr(device_queue, "pair_loops", lambda: None)
            m.setattr(stream_module, "pair_loops", lambda: None)
        swiotlb = "swiotlb" in mode
        algorithm = mode.split("+")[0] if mode.split("+")[0] not in ("none", "swiotlb") else None
        dev = EchoDevice(BOUNCE if swiotlb else None)
        dlayer = enable_device(dev) if algorithm else None
        t = TamperingTransport(dev)
        features = ALL if packed else ALL & ~(1 << PACKED)
        drv = EchoDriver(t, DriverOptions(features=features, timeout=1.0))
        if algorithm:
            enable_driver(drv, algorithm).keygen = keys()
        drv.init()
        st = drv.stream(0, 512, 512, depth=8)
        assert (st._loops is None) == python
        rng = random.Random(5)
        pairs = []
        for olen, ilen in SHAPES * 3:
            src, dst = drv.alloc_guest(max(olen, 1)), drv.alloc_guest(max(ilen, 1))
            t.memory.write(src.addr, rng.randbytes(max(olen, 1)))
            t.memory.write(dst.addr, b"\xee" * max(ilen, 1))
            pairs.append((type(src)(src.addr, olen), type(dst)(dst.addr, ilen)))
        seen: dict = {"results": [], "errors": []}
        for k, batch in enumerate((pairs[:8], pairs[8:16], pairs[16:])):
            if algorithm and k:
                # the VMM flips a byte of the first reply of the batch
                def flip(p=st._in_addr[st._free[-1]]):
                    t.memory.write(p, bytes([t.memory.read(p, 1)[0] ^ 1]))
                t.after_device = flip
            try:
                st.submit(batch)
                seen["results"].append(sorted(st.wait()))
            except QencAuthError as exc:
                seen["errors"].append(str(exc))
                seen["results"].append(sorted(exc.completed))
            t.after_device = None
            while st.in_flight:
                try:
                    seen["results"].append(sorted(st.wait()))
                except QencAuthError as exc:
                    seen["errors"].append(str(exc))
                    seen["results"].append(sorted(exc.completed))
        seen["memory"] = [t.memory.read(b.addr, max(b.length, 1)) for pair in pairs for b in pair]
        if st._slots:
            seen["slots"] = [t.memory.read(a, 513 + 16) for a in st._out_addr + st._in_addr]
        seen["completed"] = (st.submitted, st.completed, drv.counters.completions)
        if algorithm:
            seen["counters"] = (drv.buffer_layer.ciphers[0].counter, dlayer.ciphers[0].counter,
                                dlayer.rejected, drv.buffer_layer.auth_failures)
        drv.shutdown()
        t.close()
        return seen


@pytest.mark.parametrize("packed", [False, True], ids=["split", "packed"])
@pytest.mark.parametrize("mode", ["none", "swiotlb", "aes-256-gcm", "chacha20-poly1305",
                                  "aes-256-gcm+swiotlb"])
def test_c_loops_and_python_twins_agree_byte_for_byte(mode, packed, monkeypatch):
    c = run_workload(mode, packed, False, monkeypatch)
    py = run_workload(mode, packed, True, monkeypatch)
    assert c == py
    assert sum(len(r) for r in c["results"]) + sum(e.count(",") + 1 for e in c["errors"]) == 24
    if "aes" in mode or "chacha" in mode:
        assert len(c["errors"]) == 2        # one flipped reply in each of two batches


def test_malformed_arguments_raise_instead_of_crashing():
    loops = pair_loops()
    small = bytearray(16)
    with pytest.raises(TypeError):
        loops.serve_pairs([], small, small, 0, 0, 1)
    with pytest.raises(ValueError, match="outside the batch"):
        loops.serve_pairs([], small, small, 0, 0, 5, 0, print, None)
    with pytest.raises(ValueError, match="queue index"):
        loops.serve_pairs([], small, small, 0, 0, 0, 1 << 20, print, None)
    with pytest.raises(ValueError, match="bad arguments"):
        loops.submit_pairs([], [], 3, 64, 64, bytearray(64), [0, 1], None, (small, small), 0, 0,
                           None)
    with pytest.raises(ValueError, match="count outside"):
        loops.complete_pairs([], small, 2, bytearray(64), [], [], 0, None)
    with pytest.raises(ValueError, match="flight table"):
        loops.submit_pairs([], [], 0, 64, 64, bytearray(8), [0, 1], None, (small, small), 0, 0,
                           None)
    with pytest.raises(TypeError, match="seal must be a 4-tuple"):
        loops.submit_pairs([], [], 0, 64, 64, bytearray(64), [0], (0, 0, 0), (small, small), 0, 2,
                           (print, 0))
    with pytest.raises(TypeError, match="open must be a 5-tuple"):
        loops.complete_pairs([], small, 0, bytearray(64), [], [], 2, None)


class KeepingAead:
    """A cipher that keeps the windows the C loops lend it (and, with
    ``export``, a buffer of each): what a buggy or hostile primitive could
    do with memory it was shown for one call."""

    def __init__(self, inner, export: bool = False) -> None:
        self.inner = inner
        self.export = export
        self.kept: list = []

    def _keep(self, *objs) -> None:
        for o in objs:
            if type(o).__name__ == "Window":
                self.kept.append(memoryview(o) if self.export else o)

    def encrypt_into(self, nonce, data, aad, out):
        self._keep(data, out)
        return self.inner.encrypt_into(nonce, data, aad, out)

    def decrypt_into(self, nonce, data, aad, out):
        self._keep(data, out)
        return self.inner.decrypt_into(nonce, data, aad, out)


def keeping_echo(export: bool):
    dev = EchoDevice(None)
    dlayer = enable_device(dev)
    t = TamperingTransport(dev)
    drv = EchoDriver(t, DriverOptions(features=ALL & ~(1 << PACKED), timeout=1.0))
    enable_driver(drv, "aes-256-gcm")
    drv.init()
    dc, vc = drv.buffer_layer.ciphers[0], dlayer.ciphers[0]
    dc.primitive = KeepingAead(dc.primitive, export)
    vc.primitive = KeepingAead(vc.primitive, export)
    st = drv.stream(0, 256, 256, depth=4)
    pairs = []
    for k in range(8):
        src, dst = drv.alloc_guest(256), drv.alloc_guest(256)
        t.memory.write(src.addr, bytes([k]) * 256)
        pairs.append((src, dst))
    assert st.run(pairs) == [256] * 8
    assert all(t.memory.read(d.addr, 256) == bytes([k]) * 256 for k, (_, d) in enumerate(pairs))
    return drv, t, dc.primitive.kept + vc.primitive.kept, pairs


def test_a_window_a_cipher_keeps_is_never_reaimed_and_is_closed_after():
    drv, t, kept, _pairs = keeping_echo(export=False)
    # per request: the source the driver seals, the reply buffer it opens
    # into, the writable part the device seals into (but for the device's
    # first chain: a new shape makes its scratch views in Python); each call
    # a new window, because the last one was kept
    assert len(kept) == 3 * 8 - 1 and len({id(w) for w in kept}) == len(kept)
    for w in kept:
        with pytest.raises(BufferError, match="closed"):
            memoryview(w)
    drv.shutdown()
    t.close()


def test_a_buffer_kept_of_a_window_keeps_its_guest_memory_mapped():
    import gc
    drv, t, kept, pairs = keeping_echo(export=True)
    sources = [v for v in kept if v.readonly]     # the driver sealed these bytes
    assert [bytes(v) for v in sources] == [bytes([k]) * 256 for k in range(8)]
    drv.shutdown()
    t.close()            # guest RAM stays mapped while a window's buffer lives
    del drv, t
    gc.collect()
    assert [bytes(v) for v in sources] == [bytes([k]) * 256 for k in range(8)]
    for v in kept:
        v.release()
