"""Setup mistakes are errors, not device verdicts (issue 17, item 4): one line
naming the cause, exit status 2, nothing run."""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from conformance.adapters.base import AdapterOptions, SetupError
from conformance.select_adapter import parse_adapter
from conformance.runner import RunOptions, run_suite
from device_ref.devices.blk import BlkDevice, BlkOptions, MemoryStorage
from device_ref.vhost_user.backend import Server

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def sockdir():
    d = tempfile.mkdtemp(prefix="se-", dir="/tmp")    # sun_path is short
    yield Path(d)
    shutil.rmtree(d, ignore_errors=True)


def _run(vectors_dir, *argv: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "conformance.cli", "run", "--vectors",
                           str(vectors_dir), "--layout", "split", *argv], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)


def _one_line_exit_2(done: subprocess.CompletedProcess, *words: str) -> str:
    assert done.returncode == 2, done.stdout[-500:] + done.stderr[-500:]
    assert done.stdout == ""                      # no report, no verdicts
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, lines
    for w in words:
        assert w in lines[0]
    return lines[0]


def test_a_missing_socket(vectors_dir):
    done = _run(vectors_dir, "--device", "vhost-user:/nonexistent/sock", "--device-type", "blk")
    _one_line_exit_2(done, "/nonexistent/sock", "no such socket")


def test_a_socket_nobody_listens_on(vectors_dir, sockdir):
    path = str(sockdir / "dead.sock")
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(path)            # bound, never listening: connect is refused
    try:
        done = _run(vectors_dir, "--device", f"vhost-user:{path}")
    finally:
        s.close()
    _one_line_exit_2(done, "refused")


def test_a_spawned_backend_that_exits_before_the_handshake(vectors_dir):
    done = _run(vectors_dir, "--device", "spawn:false {socket}")
    _one_line_exit_2(done, "exited with status 1")
    # what it printed is in the one line
    done = _run(vectors_dir, "--device", "spawn:sh -c 'echo no disk; echo bad >&2; exit 3' {socket}")
    _one_line_exit_2(done, "exited with status 3", "no disk | bad")


def test_a_device_type_the_adapter_cannot_serve(vectors_dir):
    done = _run(vectors_dir, "--device", "ref", "--device-type", "gpu")
    _one_line_exit_2(done, "gpu")


class _OneConnection(Server):
    """A back-end that serves one connection and then stops listening,
    leaving its socket file behind (as a one-connection process does)."""

    def _end_session(self, reason):
        super()._end_session(reason)
        self.stop()


def test_a_backend_that_refuses_a_second_connection(suite, sockdir):
    path = str(sockdir / "once.sock")
    server = _OneConnection(path, lambda: BlkDevice(MemoryStorage(1 << 20), BlkOptions()),
                            log=lambda line: None)
    thread = server.serve_in_thread()
    try:
        adapter = parse_adapter(f"vhost-user:{path}", AdapterOptions(device_type="blk",
                                                                     timeout=1.0))
        with pytest.raises(SetupError, match="one connection") as info:
            run_suite(suite, adapter, RunOptions(layout="split"))
        assert "spawn:" in str(info.value)
    finally:
        server.stop()
        thread.join(5)
        server.listener.close()
        if os.path.exists(path):
            os.unlink(path)


def test_the_device_log_in_evidence_is_the_backends_own_output():
    adapter = parse_adapter("spawn:true {socket}", AdapterOptions())
    try:
        Path(adapter.log_path).write_text("--- start 1: true /tmp/x\nfirst\n--- start 2: true /tmp/x\n"
                                          "** CRITICAL **: virtio: invalid address for buffers\n")
        assert adapter.log_tail(5) == ["first",
                                       "** CRITICAL **: virtio: invalid address for buffers"]
    finally:
        adapter.cleanup()
