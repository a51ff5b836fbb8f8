"""Vector files are input from anyone (issue 19, items 6-10): no eval, no hang,
no runner error passed off as a device verdict, bounded sizes, and a busy
back-end is waited for rather than blamed."""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from dataclasses import replace
from pathlib import Path

import pytest

import conformance.verbs  # noqa: F401 - registers the verbs
from conformance.adapters.base import AdapterOptions
from conformance.engine.registry import StepError, bind
from conformance.select_adapter import parse_adapter
from conformance.adapters.ref import RefAdapter
from conformance.runner import RunOptions, run_suite
from conformance.vectors import Step, VectorError, load_suite
from conformance.verdicts import Verdict
from device_ref.transport import Interrupts
from device_ref.vhost_user.connection import Connection

ROOT = Path(__file__).resolve().parents[2]


def _doc(vectors_dir, module: str) -> dict:
    return json.loads((vectors_dir / f"{module}.json").read_text())


def _with_step(vectors_dir, tmp_path, module: str, check: str, verb: str, **args) -> Path:
    """The module's vectors with ``verb``'s arguments in test ``check`` replaced."""
    doc = _doc(vectors_dir, module)
    test = next(t for g in doc["testGroups"] for t in g["tests"] if t["checkId"] == check)
    step = next(s for s in test["steps"] if s["verb"] == verb)
    step["args"].update(args)
    path = tmp_path / f"{module}.json"
    path.write_text(json.dumps(doc))
    return path


def _cli(*argv: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "conformance.cli", *argv], cwd=ROOT,
                          capture_output=True, text=True, timeout=timeout)


CHECK = "base.status.dev.set-needs-reset/descriptor-outside-memory"
NOTIFY_CHECK = "base.status.dev.notify-needs-reset/notify-after-error"   # has expect status


def test_an_exponent_in_an_address_is_a_vector_error_not_a_hang(vectors_dir, tmp_path):
    path = _with_step(vectors_dir, tmp_path, "feature_negotiation", CHECK,
                      "submit_descriptor", addr="9**9**9**9")
    try:
        done = _cli("run", "--device", "ref", "--vectors", str(path), "--layout", "split",
                    timeout=30)
    except subprocess.TimeoutExpired:
        pytest.fail("the runner hung on an address expression")
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "address expression" in lines[0] and "Traceback" not in done.stderr


@pytest.mark.parametrize("verb,args", [
    ("submit_descriptor", {"len": "abc"}),
    ("submit_descriptor", {"len": -1}),
    ("submit_descriptor", {"len": 2 ** 70}),
    ("submit_descriptor", {"addr": "(1)(2)"}),
    ("expect status", {"op": "=~"}),
])
def test_arguments_the_engine_cannot_use_are_vector_errors(vectors_dir, tmp_path, verb, args):
    check = NOTIFY_CHECK if verb == "expect status" else CHECK
    if verb == "expect status":
        doc = _doc(vectors_dir, "feature_negotiation")
        test = next(t for g in doc["testGroups"] for t in g["tests"] if t["checkId"] == check)
        step = next(s for s in test["steps"] if s["verb"] == "status")
        step["args"].update(args)
        path = tmp_path / "feature_negotiation.json"
        path.write_text(json.dumps(doc))
    else:
        path = _with_step(vectors_dir, tmp_path, "feature_negotiation", CHECK, verb, **args)
    suite = load_suite(path)
    with pytest.raises(VectorError) as info:
        run_suite(suite, parse_adapter("ref"), RunOptions(layout="split", only=(check,)))
    assert str(next(iter(args))) in str(info.value)


def test_a_huge_entropy_request_is_refused_before_anything_is_allocated(vectors_dir, tmp_path):
    doc = _doc(vectors_dir, "virtio_rng")
    test = next(t for g in doc["testGroups"] for t in g["tests"]
                if any(s["verb"] == "rng_read" for s in t["steps"]))
    next(s for s in test["steps"] if s["verb"] == "rng_read")["args"]["len"] = 2147483648
    path = tmp_path / "virtio_rng.json"
    path.write_text(json.dumps(doc))
    with pytest.raises(VectorError, match="len"):
        run_suite(load_suite(path), parse_adapter("ref"),
                  RunOptions(layout="split", only=(test["checkId"],)))


def test_deep_nesting_is_a_vector_error_not_a_recursion_error(tmp_path):
    path = tmp_path / "deep.json"
    path.write_text("[" * 200_000 + "]" * 200_000)
    with pytest.raises(VectorError, match="nest"):
        load_suite(path)


class _LateInterrupts:
    """A transport whose interrupts arrive 50 ms after the device raised them
    (as through a forwarding proxy): ``take`` sees nothing until then."""

    DELAY = 0.05

    def __init__(self, inner) -> None:
        self._inner = inner
        self._held = Interrupts()
        self._since = 0.0

    def __getattr__(self, name):
        return getattr(self._inner, name)

    def _pull(self) -> None:
        got = self._inner.take_interrupts()
        if got and not self._held:
            self._since = time.monotonic()
        self._held.merge(got)

    def _release(self) -> Interrupts:
        if self._held and time.monotonic() - self._since >= self.DELAY:
            out, self._held = self._held, Interrupts()
            return out
        return Interrupts()

    def take_interrupts(self) -> Interrupts:
        self._pull()
        return self._release()

    def wait_interrupts(self, timeout: float) -> Interrupts:
        self._pull()
        if self._held:
            time.sleep(max(0.0, min(timeout, self._since + self.DELAY - time.monotonic())))
        else:
            time.sleep(min(timeout, 0.01))
            self._pull()
        return self._release()


class _LateAdapter(RefAdapter):
    def open(self, device_type):
        s = super().open(device_type)
        return replace(s, transport=_LateInterrupts(s.transport), synchronous=False)


def test_expect_notified_waits_for_a_notification_that_follows_the_used_entry(suite):
    run = run_suite(suite, _LateAdapter(AdapterOptions()),
                    RunOptions(layout="split", only=("base.notif.dev.flag-clear-notify",)))
    assert run.results
    bad = [(r.key, r.reason) for r in run.results if r.verdict in (Verdict.FAIL, Verdict.WEDGED)]
    assert bad == []
    assert any(r.verdict is Verdict.PASS for r in run.results)


def test_a_busy_backend_is_waited_for_not_refused(tmp_path):
    """Its listen backlog full, connect() says EAGAIN at once; the front-end
    waits for the back-end to accept instead of failing."""
    path = str(tmp_path / "busy.sock")
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(path)
    server.listen(0)
    queued = []
    try:
        for _ in range(4):          # fill the backlog (Linux queues backlog + 1)
            c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            c.setblocking(False)
            try:
                c.connect(path)
            except BlockingIOError:
                c.close()
                break
            queued.append(c)
        accepted = []

        def drain():
            time.sleep(0.3)
            server.settimeout(3)
            for _ in range(len(queued) + 1):
                accepted.append(server.accept()[0])

        t = threading.Thread(target=drain)
        t.start()
        conn = Connection(path, timeout=3.0)
        t.join()
        conn.close()
        for a in accepted:
            a.close()
    finally:
        for c in queued:
            c.close()
        server.close()
        if os.path.exists(path):
            os.unlink(path)


@pytest.mark.parametrize("kind,verb,args,word", [
    ("action", "qenc_keys", {"alg": "aes-256-gcm", "key": "zz"}, "hex"),
    ("action", "qenc_keys", {"alg": "rot13", "key": "00"}, "not one of"),
    ("action", "qenc_submit", {"plaintext": "abc"}, "hex"),
    ("action", "wait_used", {"timeout_ms": 10 ** 12}, "outside"),
    ("action", "device_io", {"count": 10 ** 6}, "outside"),
    ("action", "set_status", {"bits": ["BOGUS"]}, "not one of"),
    ("expectation", "used_len", {"op": "==", "value": "7"}, "integer"),
    ("action", "submit_descriptor", {"addr": "(" * 9 + "1" + ")" * 9, "len": 1}, "deeper"),
    ("action", "submit_descriptor", {"addr": "1" * 201, "len": 1}, "characters"),
])
def test_the_registry_refuses_arguments_a_verb_cannot_use(kind, verb, args, word):
    with pytest.raises(StepError, match=word):
        bind(Step(verb, kind, args, "x.vspec:1"))
