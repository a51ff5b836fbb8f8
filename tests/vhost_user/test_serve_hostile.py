"""Hostile sequences against our vhost-user back-end (issue 19, items 3-5):
the server survives them, uses no CPU once they are over, and never
touches a socket it does not own."""
from __future__ import annotations

import os
import subprocess
import tempfile
import threading
import time

import pytest

from device_ref.devices.rng import RngDevice
from device_ref.vhost_user import protocol as P
from device_ref.vhost_user.backend import Server
from device_ref.vhost_user.memory import SharedRegion
from device_ref.vhost_user.protocol import ProtocolFeature as PF
from device_ref.vhost_user.protocol import Request as R

from .conftest import serve_cmd, stop
from .test_vhost_malformed import (STATE, U64, closed_by_server, connect, efd, server,  # noqa: F401
                                   still_serves, table)

TICK = os.sysconf("SC_CLK_TCK")
IDLE_WINDOW = 2.0
# A spinning loop burns the whole window; an idle server a tick or two at most.
IDLE_LIMIT = 0.1


def cpu_seconds(stat_path: str) -> float:
    """User plus system CPU time from a /proc .../stat file."""
    with open(stat_path) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK   # utime, stime (fields 14, 15)


def idle_cpu(stat_path: str, window: float = IDLE_WINDOW) -> float:
    before = cpu_seconds(stat_path)
    time.sleep(window)
    return cpu_seconds(stat_path) - before


@pytest.fixture
def served(server):
    """The malformed-message tests' server, with its thread's /proc stat file."""
    thread = next(t for t in threading.enumerate() if t.name == f"{server.name}-server")
    server.stat = f"/proc/self/task/{thread.native_id}/stat"
    return server


def _running_ring(ch: P.Channel, mem: SharedRegion, kick: int) -> None:
    """A started rng ring 0 whose kick eventfd is ``kick``."""
    ch.send(R.GET_FEATURES)
    offered = P.decode_u64(ch.recv().payload)
    ch.send(R.SET_PROTOCOL_FEATURES, U64(1 << PF.REPLY_ACK))
    ch.send(R.SET_FEATURES, U64(offered & ((1 << 32) | (1 << P.F_PROTOCOL_FEATURES))))
    ch.send(R.SET_MEM_TABLE, table(mem.describe()), [mem.fd], need_reply=True)
    assert P.decode_u64(ch.recv().payload) == 0
    desc = mem.user_addr
    ch.send(R.SET_VRING_NUM, STATE(0, 16))
    ch.send(R.SET_VRING_ADDR, P.VringAddr(0, 0, desc, desc + 0x2000, desc + 0x1000).encode())
    ch.send(R.SET_VRING_BASE, STATE(0, 0))
    ch.send(R.SET_VRING_KICK, P.vring_file_payload(0, True), [kick])
    ch.send(R.SET_VRING_ENABLE, STATE(0, 1), need_reply=True)
    assert P.decode_u64(ch.recv().payload) == 0


# -- item 3: a kick fd that epoll refuses ---------------------------------------------------

def test_kick_fd_that_is_a_regular_file_is_refused_and_the_server_stays_up(served):
    with tempfile.TemporaryFile() as f:
        ch = connect(served.path)
        ch.send(R.SET_VRING_KICK, P.vring_file_payload(0, True), [f.fileno()])
        assert closed_by_server(ch)
        ch.close()
    still_serves(served.path)
    assert os.path.exists(served.path)
    assert any("not an eventfd" in e for e in served.stats.errors), served.stats.errors
    assert not any(e.startswith("internal error") for e in served.stats.errors)


@pytest.mark.parametrize("request_", [R.SET_VRING_CALL, R.SET_VRING_ERR])
def test_call_and_err_fds_must_be_eventfds_too(served, request_):
    with tempfile.TemporaryFile() as f:
        ch = connect(served.path)
        ch.send(request_, P.vring_file_payload(0, True), [f.fileno()])
        assert closed_by_server(ch)
        ch.close()
        assert f.read() == b""          # nothing was ever written into it
    still_serves(served.path)


# -- item 4: kick fds closed while epoll still watched them; a pipe at EOF ---------------------

@pytest.mark.parametrize("ending", ["get-vring-base", "reset-owner"])
def test_kicks_after_the_ring_stopped_cost_no_cpu(served, ending):
    mem = SharedRegion(0, 1 << 16, "idle")
    kick = efd()
    ch = connect(served.path)
    try:
        _running_ring(ch, mem, kick)
        if ending == "get-vring-base":
            ch.send(R.GET_VRING_BASE, STATE(0, 0))
            assert ch.recv().request == R.GET_VRING_BASE
        else:
            ch.send(R.RESET_OWNER, need_reply=True)
            assert P.decode_u64(ch.recv().payload) == 0
        os.eventfd_write(kick, 1)       # the front-end still holds the eventfd
        assert idle_cpu(served.stat) < IDLE_LIMIT
        ch.close()
        time.sleep(0.3)                 # the server ends the session
        os.eventfd_write(kick, 1)       # and after the session
        assert idle_cpu(served.stat) < IDLE_LIMIT
    finally:
        ch.close()
        os.close(kick)
        mem.close()
    still_serves(served.path)
    assert served.stats.connections >= 2


def test_a_pipe_at_eof_as_kick_fd_does_not_spin(served):
    r, w = os.pipe()
    os.close(w)                          # at EOF: readable forever
    ch = connect(served.path)
    try:
        ch.send(R.SET_VRING_KICK, P.vring_file_payload(0, True), [r])
        assert idle_cpu(served.stat) < IDLE_LIMIT
    finally:
        ch.close()
        os.close(r)
    still_serves(served.path)


def test_idle_after_every_hostile_sequence_in_a_real_serve_process(serve_process):
    """The whole set above against `device-ref serve` in its own process."""
    sock, proc = serve_process("--type", "rng", "--quiet")
    try:
        mem = SharedRegion(0, 1 << 16, "idle")
        kicks = []
        for ending in (R.GET_VRING_BASE, R.RESET_OWNER):
            kick = efd()
            kicks.append(kick)
            ch = connect(sock)
            _running_ring(ch, mem, kick)
            ch.send(ending, STATE(0, 0) if ending == R.GET_VRING_BASE else b"", need_reply=True)
            ch.recv()
            os.eventfd_write(kick, 1)
            ch.close()
        r, w = os.pipe()
        os.close(w)
        with tempfile.TemporaryFile() as f:
            for fd in (r, f.fileno()):
                ch = connect(sock)
                ch.send(R.SET_VRING_KICK, P.vring_file_payload(0, True), [fd])
                ch.close()
        os.close(r)
        for kick in kicks:
            os.eventfd_write(kick, 1)
        still_serves(sock)
        time.sleep(0.3)
        assert idle_cpu(f"/proc/{proc.pid}/stat") < IDLE_LIMIT
        assert proc.poll() is None
        for kick in kicks:
            os.close(kick)
        mem.close()
    finally:
        stop(proc)


# -- item 5: a second server on a live socket; stopping never removes another's socket ---------

def test_a_second_serve_on_a_live_socket_refuses_and_leaves_it_alone(serve_process):
    sock, first = serve_process("--type", "rng", "--quiet")
    try:
        inode = os.stat(sock).st_ino
        second = subprocess.run(serve_cmd("--type", "rng", "--socket", sock), capture_output=True,
                                text=True, timeout=30)
        assert second.returncode == 2
        lines = second.stderr.strip().splitlines()
        assert len(lines) == 1 and "in use" in lines[0] and "Traceback" not in second.stderr
        assert os.stat(sock).st_ino == inode
        still_serves(sock)
    finally:
        stop(first)
    assert not os.path.exists(sock)     # the owner removes its own socket


def test_stopping_a_server_leaves_a_socket_that_replaced_its_own(sockdir):
    path = str(sockdir / "moved.sock")
    a = Server(path, lambda: RngDevice(seed=1), log=lambda line: None)
    os.rename(path, path + ".a")        # someone else now owns the name
    b = Server(path, lambda: RngDevice(seed=2), log=lambda line: None)
    try:
        inode = os.stat(path).st_ino
        a.close()
        assert os.path.exists(path) and os.stat(path).st_ino == inode
    finally:
        b.close()
        os.unlink(path + ".a")
    assert not os.path.exists(path)


def test_a_stale_socket_is_still_replaced(sockdir):
    import socket
    path = str(sockdir / "stale.sock")
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(path)
    s.close()                            # nobody listens behind it any more
    srv = Server(path, lambda: RngDevice(seed=1), log=lambda line: None)
    thread = srv.serve_in_thread()
    try:
        still_serves(path)
    finally:
        srv.stop()
        thread.join(5)
        srv.close()
