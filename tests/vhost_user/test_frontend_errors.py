"""What a front-end user sees when a back-end cannot be used: one line on
stderr, a non-zero exit status, never a traceback."""
from __future__ import annotations

import os
import socket
import struct
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from device_ref.devices.rng import RngDevice
from device_ref.driver.rng import RngDriver
from device_ref.vhost_user import protocol as P
from device_ref.vhost_user.backend import Server
from device_ref.vhost_user.connection import FrontendError
from device_ref.vhost_user.frontend import Frontend, VhostUserTransport

from .conftest import stop, wait_for_socket

PROBE = [sys.executable, "-m", "device_ref.vhost_user.probe"]
DYING = Path(__file__).with_name("dying_backend.py")


def probe(*args: str, timeout: float = 30) -> subprocess.CompletedProcess:
    return subprocess.run(PROBE + list(args), capture_output=True, text=True, timeout=timeout)


def one_line_error(r: subprocess.CompletedProcess) -> str:
    assert r.returncode == 1, (r.returncode, r.stdout, r.stderr)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    assert lines[0].startswith("device-ref-probe: error: ")
    assert "Traceback" not in r.stderr
    return lines[0]


def test_probe_succeeds_against_our_backend(serve_process):
    sock, _ = serve_process("--type", "blk")
    r = probe("--socket", sock, "--type", "blk", "--write-test", "8")
    assert r.returncode == 0, r.stderr
    assert "capacity 131072 sectors" in r.stdout
    assert "wrote and read back 4096 bytes at sector 8" in r.stdout


def test_device_ref_probe_command_is_the_same_probe(serve_process, sockdir):
    cli = [sys.executable, "-m", "device_ref.cli", "probe"]
    sock, _ = serve_process("--type", "rng")
    ok = subprocess.run(cli + ["--socket", sock, "--type", "rng"], capture_output=True,
                        text=True, timeout=30)
    assert ok.returncode == 0, ok.stderr
    assert "read 64 bytes of entropy" in ok.stdout
    bad = subprocess.run(cli + ["--socket", str(sockdir / "absent.sock"), "--type", "rng"],
                         capture_output=True, text=True, timeout=30)
    assert bad.returncode == 1
    assert bad.stderr.strip().splitlines() == [
        f"device-ref probe: error: {sockdir / 'absent.sock'}: no such socket"]


def test_no_such_socket(sockdir):
    line = one_line_error(probe("--socket", str(sockdir / "absent.sock"), "--type", "rng"))
    assert "no such socket" in line


def test_nothing_listening(sockdir):
    path = str(sockdir / "dead.sock")
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(path)
    s.close()  # the socket file stays, nobody listens
    line = one_line_error(probe("--socket", path, "--type", "rng"))
    assert "connection refused" in line


def test_socket_that_does_not_answer(sockdir):
    path = str(sockdir / "mute.sock")
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(path)
    s.listen(1)  # connections queue up, nothing is ever read or answered
    try:
        line = one_line_error(probe("--socket", path, "--type", "rng", "--timeout", "0.5"))
    finally:
        s.close()
    assert "no reply to GET_FEATURES within 0.5 s" in line


def test_backend_lacking_a_required_feature(serve_process):
    sock, _ = serve_process("--type", "rng", "--no-packed")
    line = one_line_error(probe("--socket", sock, "--type", "rng", "--require", "34"))
    assert "lacks required feature RING_PACKED (bit 34)" in line


def test_backend_lacking_swiotlb(serve_process):
    sock, _ = serve_process("--type", "blk")
    line = one_line_error(probe("--socket", sock, "--type", "blk", "--swiotlb"))
    assert "lacks required feature SWIOTLB (bit 44)" in line


def test_probe_with_swiotlb_against_a_swiotlb_backend(serve_process):
    sock, _ = serve_process("--type", "blk", "--swiotlb")
    r = probe("--socket", sock, "--type", "blk", "--swiotlb", "--write-test", "0")
    assert r.returncode == 0, r.stderr
    assert "SWIOTLB (bit 44)" in r.stdout


def test_backend_dies_mid_request(sockdir):
    path = str(sockdir / "dying.sock")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
    proc = subprocess.Popen([sys.executable, str(DYING), path], env=env)
    try:
        wait_for_socket(path, proc)
        line = one_line_error(probe("--socket", path, "--type", "rng"))
    finally:
        stop(proc)
    assert proc.returncode == 3  # it really died while handling the request
    assert "back-end closed the connection" in line and "in flight" in line


# A scripted back-end that answers the first request with given bytes: the
# front-end must turn every kind of bad reply into one FrontendError line.


def scripted_backend(path: str, answer: bytes, close: bool = True) -> threading.Thread:
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(path)
    srv.listen(1)

    def run():
        conn, _ = srv.accept()
        conn.recv(4096)
        conn.sendall(answer)
        if close:
            conn.close()
        srv.close()
    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t


@pytest.mark.parametrize("answer, message", [
    (b"", "back-end closed the connection (waiting for the reply to GET_FEATURES)"),
    (struct.pack("<III", 2, 0x5, 8) + bytes(8), "expected a reply to GET_FEATURES, got SET_FEATURES"),
    (struct.pack("<III", 1, 0x1, 8) + bytes(8), "expected a reply to GET_FEATURES"),
    (struct.pack("<III", 1, 0x5, 4) + bytes(4), "GET_FEATURES reply: payload is 4 bytes, expected 8"),
    (struct.pack("<III", 1, 0x5, 8) + bytes(3), "bad reply to GET_FEATURES: connection closed inside"),
    (struct.pack("<III", 1, 0x6, 0), "bad reply to GET_FEATURES: unsupported protocol version 2"),
    (b"\x01\x00", "bad reply to GET_FEATURES: connection closed inside a message"),
])
def test_bad_replies_become_one_line_errors(sockdir, answer, message):
    path = str(sockdir / "scripted.sock")
    t = scripted_backend(path, answer)
    with pytest.raises(FrontendError) as err:
        Frontend(path, timeout=2).handshake()
    t.join(5)
    text = str(err.value)
    assert message in text and "\n" not in text


class ChattyRng(RngDevice):
    """Answers a kick with a reply nobody asked for, and completes nothing."""

    looks = 0

    def notify(self, queue):
        # The back-end looks at the ring once when it is enabled (while the
        # front-end waits for the ack); the driver's kicks come after that.
        self.looks += 1
        if self.looks > 1:
            channel = self._host.session.channel   # the vhost-user connection it serves
            channel.send(P.Request.GET_FEATURES, P.encode_u64(0), reply=True)


def test_unsolicited_message_from_backend_is_an_error_not_a_busy_wait(sockdir):
    server = Server(str(sockdir / "chatty.sock"), ChattyRng, log=lambda line: None)
    thread = server.serve_in_thread()
    t = VhostUserTransport(server.path, 4)
    try:
        drv = RngDriver(t)
        drv.init()
        with pytest.raises(FrontendError, match="unexpected GET_FEATURES from the back-end"):
            drv.read(16)
    finally:
        t.close()
        server.stop()
        thread.join(5)
        server.close()


def test_second_front_end_waits_for_the_first(serve_process):
    """One front-end at a time: a second one is answered only once the first
    has gone, and is told why it waits if it gives up."""
    sock, _ = serve_process("--type", "rng")
    first = VhostUserTransport(sock, 4)
    try:
        with pytest.raises(FrontendError, match="busy with another front-end"):
            VhostUserTransport(sock, 4, timeout=0.5)
    finally:
        first.close()
    second = VhostUserTransport(sock, 4)   # served now
    second.close()
