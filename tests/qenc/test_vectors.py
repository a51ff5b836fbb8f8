"""The queue-encryption vectors: known answers checked with ``cryptography``
directly, forged buffers refused by the reference device, and a runner
that catches devices which break the rules.

Nonce and associated data are rebuilt here from the rules in
spec/queue_encryption.vspec, not taken from device_ref or the runner:
nonce = le64 counter | le16 queue | u8 direction | u8 0;
aad = le32 plaintext length | le16 queue | u8 direction | u8 algorithm."""
from __future__ import annotations

import struct
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM, ChaCha20Poly1305

from conformance.adapters.base import AdapterOptions
from conformance.adapters.ref import RefAdapter
from conformance.runner import RunOptions, run_suite
from conformance.vectors import load_suite
from device_ref.devices.blk import BlkDevice, BlkOptions, MemoryStorage
from device_ref.devices.rng import RngDevice
from device_ref.qenc import enable_device
from device_ref.qenc.device_side import DeviceQenc
from tests.conformance.conftest import compile_vectors

ROOT = Path(__file__).resolve().parents[2]
SPEC = ROOT / "spec" / "queue_encryption.vspec"
PRIMITIVE = {"aes-256-gcm": (AESGCM, 1), "chacha20-poly1305": (ChaCha20Poly1305, 2)}


@pytest.fixture(scope="module")
def vectors(tmp_path_factory):
    out = compile_vectors(tmp_path_factory.mktemp("qenc-vectors"), [str(SPEC)])
    return load_suite(out), out


def _tests(suite):
    for f in suite.files:
        for g in f.groups:
            yield from ((g, t) for t in g.tests)


def _kat_tests(suite):
    return [t for _g, t in _tests(suite) if any(s.verb == "qenc_sealed" for s in t.steps)]


def test_every_algorithm_has_known_answers(vectors):
    suite, _ = vectors
    algs = set()
    for t in _kat_tests(suite):
        algs |= {s.args["alg"] for s in t.steps if s.verb == "qenc_keys"}
    assert algs == {"aes-256-gcm", "chacha20-poly1305"}


def test_known_answers_agree_with_cryptography(vectors):
    suite, _ = vectors
    checked = 0
    for t in _kat_tests(suite):
        keys = next(s for s in t.steps if s.verb == "qenc_keys")
        cls, alg = PRIMITIVE[keys.args["alg"]]
        aead = cls(bytes.fromhex(keys.args["key"]))
        counter = 0
        plaintext = None
        for s in t.steps:
            if s.verb == "qenc_submit":
                plaintext = bytes.fromhex(s.args["plaintext"])
            elif s.verb == "qenc_sealed":
                nonce = struct.pack("<QHBB", counter, 0, 0, 0)
                aad = struct.pack("<IHBB", len(plaintext), 0, 0, alg)
                assert s.args["nonce"] == nonce.hex() and s.args["aad"] == aad.hex()
                sealed = aead.encrypt(nonce, plaintext, aad)
                assert s.args["ciphertext"] == sealed[:-16].hex()
                assert s.args["tag"] == sealed[-16:].hex()
                checked += 1
            elif s.verb == "qenc_reply" and "tag" in s.args:
                nonce = struct.pack("<QHBB", counter, 0, 1, 0)
                reply = bytes.fromhex(s.args["plaintext"])
                aad = struct.pack("<IHBB", len(reply), 0, 1, alg)
                assert s.args["nonce"] == nonce.hex() and s.args["aad"] == aad.hex()
                raw = bytes.fromhex(s.args["ciphertext"] + s.args["tag"])
                assert aead.decrypt(nonce, raw, aad) == reply
                counter += 1
                checked += 1
    assert checked == 8   # two algorithms x two buffers x both directions


def test_reference_device_passes_and_refuses_every_forgery(vectors):
    suite, _ = vectors
    results = []
    for layout in ("split", "packed"):
        results += run_suite(suite, RefAdapter(AdapterOptions(timeout=0.5)),
                             RunOptions(layout=layout, step_timeout=0.5)).results
    by_check = {}
    for r in results:
        by_check.setdefault(r.check_id, set()).add(r.verdict.value)
    invalid = {t.check_id for _g, t in _tests(suite) if t.result == "invalid"}
    forged = {c for c in invalid if "refuse-forged" in c}
    assert {c.split("/")[1] for c in forged} >= {
        "tampered-ciphertext", "tampered-tag", "tampered-aad", "replayed-counter",
        "wrong-direction", "wrong-queue"}
    for c in invalid:
        assert by_check[c] == {"REJECT"}, (c, by_check[c])
    for r in results:
        assert r.verdict.value in ("PASS", "REJECT", "SKIP"), (r.check_id, r.verdict, r.reason)
    skipped = {r.check_id for r in results if r.verdict.value == "SKIP"}
    assert not skipped    # the queue-reset and driver-mode checks run in process too
    assert by_check["qenc.dev.queue-reset-forgets/rekey-after-queue-reset"] == {"PASS"}


class AcceptsForgeries(DeviceQenc):
    """Broken: when the tag fails, acts on the bytes anyway (no plaintext
    check at all) and answers in the clear."""

    def serve(self, queue, io, handle):
        c = self.ciphers.get(queue)
        if c is not None and c.primitive is not None:
            c.counter += 1
            return handle(queue, io)
        return super().serve(queue, io, handle)


class ReadableRegisters(DeviceQenc):
    """Broken: registers read back what was written."""

    def read_register(self, offset, length):
        start = offset - 0xC0
        if start >= 0x28:      # the algorithms bitmap stays as it should be
            return super().read_register(offset, length)
        return bytes(self.regs.image[start:start + length]) or bytes(length)

    def write_register(self, offset, data):
        super().write_register(offset, data)
        start = offset - 0xC0
        keep = data[:max(0, 0x28 - start)]
        self.regs.image[start:start + len(keep)] = keep


class ShortCapability(DeviceQenc):
    """Broken: announces its register block as 32 bytes long."""

    @staticmethod
    def pci_structure():
        return 11, 0xC0, 32


class NoCapability(DeviceQenc):
    """Broken: offers the feature but lists no capability for its registers."""

    pci_structure = None


def _factory(layer_cls):
    def make(device_type, bounce):
        dev = (BlkDevice(MemoryStorage(2048 * 512), BlkOptions(), bounce=bounce)
               if device_type == "blk" else RngDevice(seed=1, bounce=bounce))
        layer = enable_device(dev)
        dev.buffer_layer = layer_cls(dev)
        return dev
    return make


@pytest.mark.parametrize("layer_cls,requirement", [
    (AcceptsForgeries, "qenc.dev.refuse-forged"),
    (AcceptsForgeries, "qenc.dev.open-readable"),
    (ReadableRegisters, "qenc.dev.registers-write-only"),
    (ShortCapability, "qenc.pci.dev.capability"),
    (NoCapability, "qenc.pci.dev.capability"),
], ids=["accepts-forgeries/refuse", "accepts-forgeries/open", "readable-registers",
        "short-capability", "no-capability"])
def test_runner_catches_broken_devices(vectors, layer_cls, requirement):
    suite, _ = vectors
    run = run_suite(suite, RefAdapter(AdapterOptions(timeout=0.3), factory=_factory(layer_cls)),
                    RunOptions(layout="split", step_timeout=0.3, only=(requirement,)))
    bad = [r for r in run.results if r.verdict.value in ("FAIL", "WEDGED")]
    assert bad, [(r.check_id, r.verdict.value, r.reason) for r in run.results]


def test_runner_catches_a_device_that_reuses_a_nonce(vectors):
    suite, _ = vectors

    class Stuck(DeviceQenc):
        def serve(self, queue, io, handle):
            c = self.ciphers.get(queue)
            if c is not None and c.primitive is not None:
                c.counter = 0     # every buffer treated as the first: nonce reuse
            return super().serve(queue, io, handle)
    run = run_suite(suite, RefAdapter(AdapterOptions(timeout=0.3), factory=_factory(Stuck)),
                    RunOptions(layout="split", step_timeout=0.3, only=("qenc.dev.open-readable",)))
    assert any(r.verdict.value == "FAIL" for r in run.results), \
        [(r.check_id, r.verdict.value, r.reason) for r in run.results]


@pytest.mark.parametrize("dtype", ["blk", "rng"])
def test_vectors_over_vhost_user_against_device_ref_serve(vectors, dtype):
    import os
    import shutil
    import subprocess
    import sys
    import tempfile
    import time

    from conformance.select_adapter import parse_adapter

    suite, _ = vectors
    d = tempfile.mkdtemp(prefix="qv-", dir="/tmp")
    sock = os.path.join(d, "s.sock")
    proc = subprocess.Popen([sys.executable, "-m", "device_ref.cli", "serve", "--socket", sock,
                             "--quiet", "--type", dtype, "--queue-encryption"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while not os.path.exists(sock):
            assert proc.poll() is None and time.monotonic() < deadline, "serve did not start"
            time.sleep(0.02)
        results = []
        for layout in ("split", "packed"):
            adapter = parse_adapter(f"vhost-user:{sock}", AdapterOptions(device_type=dtype))
            try:
                results += run_suite(suite, adapter, RunOptions(layout=layout)).results
            finally:
                adapter.close()
        verdicts = {r.verdict.value for r in results}
        assert verdicts <= {"PASS", "REJECT", "SKIP"}, \
            [(r.check_id, r.verdict.value, r.reason) for r in results
             if r.verdict.value not in ("PASS", "REJECT", "SKIP")]
        assert "PASS" in verdicts and "REJECT" in verdicts
    finally:
        proc.terminate()
        proc.wait(5)
        shutil.rmtree(d, ignore_errors=True)


def _keys_in_window(suite, layout="split"):
    return run_suite(suite, RefAdapter(AdapterOptions(timeout=0.5)),
                     RunOptions(layout=layout, step_timeout=0.5,
                                only=("qenc.drv.register-window",))).results


def test_driver_mode_judges_the_reference_driver_keys_in_window(vectors):
    suite, _ = vectors
    results = _keys_in_window(suite) + _keys_in_window(suite, "packed")
    assert [r.verdict.value for r in results] == ["PASS", "PASS"], \
        [(r.check_id, r.verdict.value, r.reason) for r in results]


def test_driver_mode_fails_a_driver_that_writes_keys_after_driver_ok(vectors, monkeypatch):
    from device_ref.device.features import DRIVER_OK   # noqa: PLC0415
    from device_ref.driver.core import VirtioDriver     # noqa: PLC0415
    suite, _ = vectors
    status = VirtioDriver._status

    def late_key(self, value):
        status(self, value)
        if value & DRIVER_OK and self.buffer_layer is not None:
            self.buffer_layer.rekey(self, 0)     # a key write outside the window
    monkeypatch.setattr(VirtioDriver, "_status", late_key)
    results = _keys_in_window(suite)
    assert [r.verdict.value for r in results] == ["FAIL"], \
        [(r.check_id, r.verdict.value, r.reason) for r in results]


def test_driver_mode_fails_a_driver_that_ignores_the_algorithms_register(vectors, monkeypatch):
    from device_ref.qenc.driver_side import DriverQenc     # noqa: PLC0415
    suite, _ = vectors
    run = lambda: run_suite(suite, RefAdapter(AdapterOptions(timeout=0.5)),   # noqa: E731
                            RunOptions(layout="split", step_timeout=0.5,
                                       only=("qenc.drv.listed-algorithm",))).results
    assert [r.verdict.value for r in run()] == ["PASS"]      # chooses ChaCha20-Poly1305
    monkeypatch.setattr(DriverQenc, "choose", lambda self, bitmap: self.algorithm)
    results = run()                                          # commits AES-256-GCM regardless
    assert [r.verdict.value for r in results] == ["FAIL"], \
        [(r.check_id, r.verdict.value, r.reason) for r in results]


def test_a_device_that_fills_less_passes_when_its_tag_follows_the_reply(vectors):
    # the legal half of the tag-at-area-end mutant: same short fill, the
    # proposal's format; nothing may be judged against it
    from conformance.mutants import FillsHalf             # noqa: PLC0415
    suite, _ = vectors
    short_rng = type("ShortRng", (FillsHalf, RngDevice), {})

    def make(device_type, bounce):
        dev = (BlkDevice(MemoryStorage(2048 * 512), BlkOptions(), bounce=bounce)
               if device_type == "blk" else short_rng(seed=1, bounce=bounce))
        return enable_device(dev).device
    for layout in ("split", "packed"):
        run = run_suite(suite, RefAdapter(AdapterOptions(timeout=0.3), factory=make),
                        RunOptions(layout=layout, step_timeout=0.3,
                                   only=("qenc.dev.seal-writable",)))
        assert [r.verdict.value for r in run.results] == ["PASS"], \
            [(r.check_id, r.verdict.value, r.reason) for r in run.results]


def test_a_device_that_lists_one_cipher_is_not_judged_on_the_other(vectors):
    from device_ref.qenc import algorithms as alg         # noqa: PLC0415
    suite, _ = vectors

    def make(device_type, bounce):
        dev = (BlkDevice(MemoryStorage(2048 * 512), BlkOptions(), bounce=bounce)
               if device_type == "blk" else RngDevice(seed=1, bounce=bounce))
        return enable_device(dev, algorithms=alg.bitmap(["aes-256-gcm"])).device
    run = run_suite(suite, RefAdapter(AdapterOptions(timeout=0.3), factory=make),
                    RunOptions(layout="split", step_timeout=0.3,
                               only=("qenc.dev.listed-installs", "qenc.dev.reserved-algorithm",
                                     "qenc.dev.algorithms-listed", "qenc.dev.open-readable")))
    got = {(r.check_id.split("/")[-1] if "/" in r.check_id else r.check_id, r.verdict.value)
           for r in run.results}
    assert not {v for _c, v in got} & {"FAIL", "WEDGED"}, got
    skipped = [r for r in run.results if r.verdict.value == "SKIP"]
    # the ChaCha20-Poly1305 checks are skipped, with the register's value as the reason
    assert skipped and all("does not list chacha20-poly1305" in r.reason for r in skipped), got
    # the unlisted value is ChaCha20-Poly1305's own (2): refused like a reserved one
    assert any(r.verdict.value == "REJECT" for r in run.results
               if r.requirement == "qenc.dev.reserved-algorithm"), got
