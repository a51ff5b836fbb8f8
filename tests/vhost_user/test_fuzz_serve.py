"""Fuzz target for the vhost-user surface (slow suite): message sequences with
every kind of file descriptor attached, against `device-ref serve` running
as its own process. After each sequence the server answers a new front-end;
after all of them it is alive, idle (no CPU) and holds no more fds than at
the start."""
from __future__ import annotations

import os
import socket
import struct
import subprocess
import tempfile
import time

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from device_ref.vhost_user import protocol as P
from device_ref.vhost_user.memory import SharedRegion
from device_ref.vhost_user.protocol import ProtocolFeature as PF
from device_ref.vhost_user.protocol import Request as R

from .conftest import serve_cmd, stop, wait_for_socket
from .test_serve_hostile import IDLE_LIMIT, idle_cpu
from .test_vhost_malformed import STATE, U64, connect, still_serves, table

pytestmark = pytest.mark.slow

FD_KINDS = ("eventfd", "file", "pipe-eof", "pipe", "memfd", "socket")


def make_fd(kind: str) -> list[int]:
    """The fd to send first, then any others to close afterwards."""
    if kind == "eventfd":
        return [os.eventfd(0, os.EFD_CLOEXEC)]
    if kind == "file":
        f = tempfile.TemporaryFile()
        return [os.dup(f.fileno())]
    if kind in ("pipe", "pipe-eof"):
        r, w = os.pipe()
        if kind == "pipe-eof":
            os.close(w)
            return [r]
        os.write(w, b"12345678")
        return [r, w]
    if kind == "memfd":
        fd = os.memfd_create("fz", os.MFD_CLOEXEC)
        os.ftruncate(fd, 1 << 16)
        return [fd]
    a, b = socket.socketpair()
    return [a.detach(), b.detach()]


FILE_REQUESTS = (R.SET_VRING_KICK, R.SET_VRING_CALL, R.SET_VRING_ERR)
STEPS = st.one_of(
    st.tuples(st.sampled_from(FILE_REQUESTS), st.integers(0, 2), st.sampled_from(FD_KINDS)),
    st.tuples(st.sampled_from([R.GET_VRING_BASE, R.RESET_OWNER, R.SET_VRING_ENABLE,
                               R.SET_VRING_NUM, R.GET_FEATURES, R.SET_OWNER]),
              st.integers(0, 2), st.sampled_from([0, 1, 16, 2**31])),
    st.just(("kick", 0, 0)),
)


@pytest.fixture(scope="module")
def serve_process():
    d = tempfile.mkdtemp(prefix="vu-fz-", dir="/tmp")
    sock = os.path.join(d, "fz.sock")
    proc = subprocess.Popen(serve_cmd("--type", "rng", "--socket", sock, "--quiet"),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for_socket(sock, proc)
        still_serves(sock)
        time.sleep(0.5)
        yield sock, proc, _fd_count(proc.pid)
    finally:
        stop(proc)
        os.rmdir(d)


def _fd_count(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def _setup(ch: P.Channel, mem: SharedRegion) -> None:
    ch.send(R.GET_FEATURES)
    offered = P.decode_u64(ch.recv().payload)
    ch.send(R.SET_PROTOCOL_FEATURES, U64(1 << PF.REPLY_ACK))
    ch.send(R.SET_FEATURES, U64(offered & ((1 << 32) | (1 << P.F_PROTOCOL_FEATURES))))
    ch.send(R.SET_MEM_TABLE, table(mem.describe()), [mem.fd])
    ch.send(R.SET_VRING_NUM, STATE(0, 16))
    base = mem.user_addr
    ch.send(R.SET_VRING_ADDR, P.VringAddr(0, 0, base, base + 0x2000, base + 0x1000).encode())


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(setup=st.booleans(), steps=st.lists(STEPS, min_size=1, max_size=8))
def test_fuzzed_fd_sequences_against_a_serve_process(serve_process, setup, steps):
    sock, proc, _ = serve_process
    mem = SharedRegion(0, 1 << 16, "fz")
    keep: list[int] = []
    kicks: list[int] = []
    ch = connect(sock)
    try:
        if setup:
            _setup(ch, mem)
        for request, index, arg in steps:
            if request == "kick":
                for k in kicks:
                    os.eventfd_write(k, 1)
                continue
            if request in FILE_REQUESTS:
                fds = make_fd(arg)
                keep += fds
                if arg == "eventfd" and request == R.SET_VRING_KICK:
                    kicks.append(fds[0])
                ch.send(request, P.vring_file_payload(index, True), [fds[0]])
            elif request in (R.GET_FEATURES, R.SET_OWNER, R.RESET_OWNER):
                ch.send(request)
            else:
                ch.send(request, STATE(index, arg))
    except (BrokenPipeError, ConnectionResetError):
        pass                                  # the server hung up on something: allowed
    finally:
        ch.close()
        for k in kicks:                       # the front-end still holds its eventfds
            try:
                os.eventfd_write(k, 1)
            except OSError:
                pass
        for fd in keep:
            os.close(fd)
        mem.close()
    probe = connect(sock)
    try:
        probe.sock.settimeout(10)
        probe.send(R.GET_FEATURES)
        assert probe.recv().header.is_reply
    finally:
        probe.close()
    assert proc.poll() is None


def test_after_the_fuzzing_the_server_is_idle_and_holds_no_extra_fds(serve_process):
    sock, proc, baseline = serve_process
    still_serves(sock)
    time.sleep(0.5)
    assert idle_cpu(f"/proc/{proc.pid}/stat") < IDLE_LIMIT
    assert _fd_count(proc.pid) <= baseline
    assert proc.poll() is None
