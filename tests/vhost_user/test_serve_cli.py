"""`device-ref serve` as a process: argument errors, and malformed traffic
that must not take it down."""
from __future__ import annotations

import os
import signal
import socket
import struct
import subprocess

import pytest

from .conftest import serve_cmd

from .test_vhost_malformed import closed_by_server, connect, still_serves


@pytest.mark.parametrize("args, message", [
    (["--type", "blk", "--seed", "1"], "--seed applies to --type rng only"),
    (["--type", "rng", "--disk", "x.img"], "apply to --type blk only"),
    (["--type", "rng", "--require-swiotlb"], "--require-swiotlb needs --swiotlb"),
    (["--type", "rng", "--queue-size", "0"], "--queue-size 0 is not in 1..32768"),
    (["--type", "blk", "--disk", "/nonexistent/dir/d.img"], "No such file or directory"),
])
def test_bad_arguments_exit_2_with_one_line(sockdir, args, message):
    r = subprocess.run(serve_cmd("--socket", str(sockdir / "s.sock"), *args),
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 2
    assert r.stderr.strip().count("\n") == 0 and message in r.stderr
    assert "Traceback" not in r.stderr


def test_socket_path_too_long(sockdir):
    path = str(sockdir / ("x" * 120))
    r = subprocess.run(serve_cmd("--type", "rng", "--socket", path), capture_output=True,
                       text=True, timeout=30)
    assert r.returncode == 2 and "Unix sockets allow at most 107" in r.stderr
    assert r.stderr.count("\n") == 1 and "Traceback" not in r.stderr


def test_socket_in_missing_directory(sockdir):
    r = subprocess.run(serve_cmd("--type", "rng", "--socket", str(sockdir / "no" / "s.sock")),
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 2 and "does not exist" in r.stderr


def test_process_survives_garbage_and_serves_next(serve_process):
    sock, proc = serve_process("--type", "rng")
    for junk in (b"\x00" * 3, struct.pack("<III", 1, 0, 0), struct.pack("<III", 77, 1, 0),
                 struct.pack("<III", 2, 1, 4) + b"abcd"):
        ch = connect(sock)
        ch.send_raw(junk)
        if len(junk) == 3:
            ch.sock.shutdown(socket.SHUT_WR)
        assert closed_by_server(ch)
        ch.close()
    still_serves(sock)
    assert proc.poll() is None
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=10)
    assert proc.returncode == 0
    log = out.decode()
    assert log.count(": error: ") == 4, log
    assert "Traceback" not in log
    assert not os.path.exists(sock)  # it removed its socket on the way out
