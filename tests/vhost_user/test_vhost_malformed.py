"""Malformed vhost-user traffic against our back-end.

Every case must end with a one-line error in the server log (or a refusal
ack, when the front-end asked for acks), no crash, no hang, and the next
connection served normally.
"""
from __future__ import annotations

import os
import socket
import struct
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from device_ref.devices.blk import BlkDevice, MemoryStorage
from device_ref.devices.rng import RngDevice
from device_ref.driver.rng import RngDriver
from device_ref.vhost_user import protocol as P
from device_ref.vhost_user.backend import Server
from device_ref.vhost_user.frontend import VhostUserTransport
from device_ref.vhost_user.memory import SharedRegion
from device_ref.vhost_user.protocol import ProtocolFeature as PF
from device_ref.vhost_user.protocol import Request as R

from .raw_ring import RawDevice

MESSAGE_TIMEOUT = 0.5
ID_ENTROPY = 4


@pytest.fixture
def server(sockdir):
    logs: list[str] = []
    s = Server(str(sockdir / "m.sock"), lambda: RngDevice(seed=5), log=logs.append,
               message_timeout=MESSAGE_TIMEOUT)
    thread = s.serve_in_thread()
    s.logs = logs
    yield s
    s.stop()
    thread.join(5)
    assert not thread.is_alive(), "server did not stop"
    s.close()


def connect(path: str) -> P.Channel:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(5)
    sock.connect(path)
    return P.Channel(sock)


def closed_by_server(ch: P.Channel, timeout: float = 3.0) -> bool:
    """True once the server hung up on us (anything it sent first is skipped)."""
    ch.sock.settimeout(timeout)
    try:
        while True:
            data = ch.sock.recv(4096)
            if not data:
                return True
    except (socket.timeout, TimeoutError):
        return False
    except ConnectionResetError:
        return True


def still_serves(path: str) -> None:
    """A well-behaved front-end and driver get entropy on a new connection."""
    t = VhostUserTransport(path, ID_ENTROPY, ram_size=1 << 20, timeout=5)
    try:
        drv = RngDriver(t)
        drv.init()
        assert len(drv.read(32)) == 32
        drv.shutdown()
    finally:
        t.close()


def efd() -> int:
    return os.eventfd(0, os.EFD_CLOEXEC)


def memfd(size: int = 1 << 16) -> int:
    fd = os.memfd_create("m", os.MFD_CLOEXEC)
    os.ftruncate(fd, size)
    return fd


def hdr(request: int, size: int, flags: int = P.VERSION) -> bytes:
    return struct.pack("<III", request, flags, size)


def region(gpa: int, size: int, uva: int, off: int = 0) -> P.MemRegion:
    return P.MemRegion(gpa, size, uva, off)


# Each case: (id, list of (raw bytes, fds to send), needs setup first).
U64 = P.encode_u64
STATE = lambda i, n: P.VringState(i, n).encode()  # noqa: E731


def table(*regions: P.MemRegion) -> bytes:
    return P.encode_mem_table(list(regions))


CASES = {
    "short-header-then-close": [(b"\x01\x00\x00\x00\x01", [])],
    "header-only-partial-payload": [(hdr(R.SET_FEATURES, 8) + b"\x00\x00\x00", [])],
    "bad-version": [(hdr(R.GET_FEATURES, 0, flags=0), [])],
    "version-2": [(hdr(R.GET_FEATURES, 0, flags=2), [])],
    "huge-payload-size": [(hdr(R.SET_FEATURES, 1 << 20), [])],
    "set-features-short-payload": [(hdr(R.SET_FEATURES, 4) + b"\0" * 4, [])],
    "get-features-with-payload": [(hdr(R.GET_FEATURES, 8) + U64(0), [])],
    "unknown-request": [(hdr(999, 0), [])],
    "request-zero": [(hdr(0, 0), [])],
    "unsupported-log-base": [(hdr(R.SET_LOG_BASE, 16) + b"\0" * 16, [])],
    "reply-flag-on-request": [(hdr(R.GET_FEATURES, 0, flags=P.VERSION | P.FLAG_REPLY), [])],
    "fd-on-fdless-request": [(hdr(R.GET_FEATURES, 0), ["efd"])],
    "two-fds-on-call": [(hdr(R.SET_VRING_CALL, 8) + U64(0), ["efd", "efd"])],
    "nine-fds": [(hdr(R.SET_VRING_CALL, 8) + U64(0), ["efd"] * 9)],
    "kick-missing-fd": [(hdr(R.SET_VRING_KICK, 8) + U64(0), [])],
    "kick-polling-mode": [(hdr(R.SET_VRING_KICK, 8) + U64(0x100), [])],
    "vring-file-reserved-bits": [(hdr(R.SET_VRING_CALL, 8) + U64(0x10000), ["efd"])],
    "mem-table-no-fds": [(hdr(R.SET_MEM_TABLE, 40) + table(region(0, 4096, 0x10000)), [])],
    "mem-table-zero-regions": [(hdr(R.SET_MEM_TABLE, 8) + struct.pack("<II", 0, 0), [])],
    "mem-table-nine-regions": [(hdr(R.SET_MEM_TABLE, 8 + 9 * 32) + struct.pack("<II", 9, 0)
                                + b"\0" * (9 * 32), ["memfd"] * 8)],
    "mem-table-count-size-mismatch": [(hdr(R.SET_MEM_TABLE, 8 + 32) + struct.pack("<II", 2, 0)
                                       + b"\0" * 32, ["memfd"])],
    "mem-table-guest-overlap": [(hdr(R.SET_MEM_TABLE, 8 + 64)
                                 + table(region(0, 0x8000, 0x100000),
                                         region(0x4000, 0x8000, 0x200000)), ["memfd", "memfd"])],
    "mem-table-user-overlap": [(hdr(R.SET_MEM_TABLE, 8 + 64)
                                + table(region(0, 0x8000, 0x100000),
                                        region(0x10000, 0x8000, 0x104000)), ["memfd", "memfd"])],
    "mem-table-zero-size": [(hdr(R.SET_MEM_TABLE, 40) + table(region(0, 0, 0x1000)), ["memfd"])],
    "mem-table-beyond-file": [(hdr(R.SET_MEM_TABLE, 40) + table(region(0, 1 << 20, 0x1000)),
                               ["memfd"])],
    "mem-table-offset-beyond-file": [(hdr(R.SET_MEM_TABLE, 40)
                                      + table(region(0, 4096, 0x1000, 1 << 30)), ["memfd"])],
    "mem-table-wraps": [(hdr(R.SET_MEM_TABLE, 40)
                         + table(region((1 << 64) - 4096, 8192, 0x1000)), ["memfd"])],
    "mem-table-unmappable-fd": [(hdr(R.SET_MEM_TABLE, 40) + table(region(0, 4096, 0x1000)),
                                 ["efd"])],
    "vring-index-out-of-range": [(hdr(R.SET_VRING_NUM, 8) + STATE(7, 64), [])],
    "vring-num-zero": [(hdr(R.SET_VRING_NUM, 8) + STATE(0, 0), [])],
    "vring-num-too-big": [(hdr(R.SET_VRING_NUM, 8) + STATE(0, 1 << 16), [])],
    "vring-num-not-power-of-two": [(hdr(R.SET_VRING_NUM, 8) + STATE(0, 100), [])],
    "vring-addr-before-mem-table": [(hdr(R.SET_VRING_ADDR, 40)
                                     + P.VringAddr(0, 0, 0x1000, 0x3000, 0x2000).encode(), [])],
    "vring-addr-wrong-size": [(hdr(R.SET_VRING_ADDR, 32) + b"\0" * 32, [])],
    "vring-enable-two": [(hdr(R.SET_VRING_ENABLE, 8) + STATE(0, 2), [])],
    "protocol-features-not-offered": [(hdr(R.SET_PROTOCOL_FEATURES, 8) + U64(1 << 40), [])],
    "features-not-offered": [(hdr(R.SET_FEATURES, 8) + U64(1 << 63), [])],
    "config-too-big": [(hdr(R.GET_CONFIG, 12 + 300) + struct.pack("<III", 0, 300, 0)
                        + b"\0" * 300, [])],
    "config-size-mismatch": [(hdr(R.GET_CONFIG, 12 + 4) + struct.pack("<III", 0, 8, 0)
                              + b"\0" * 4, [])],
}


def _fds(kinds: list[str]) -> list[int]:
    return [efd() if k == "efd" else memfd() for k in kinds]


@pytest.mark.parametrize("case", sorted(CASES))
def test_malformed_message_is_rejected_and_server_stays_up(server, case):
    before = len(server.stats.errors)
    ch = connect(server.path)
    for data, kinds in CASES[case]:
        fds = _fds(kinds)
        try:
            ch.send_raw(data, fds)
        finally:
            for fd in fds:
                os.close(fd)
    if case.endswith("then-close"):
        ch.sock.shutdown(socket.SHUT_WR)   # half a message, then end of stream
    start = time.monotonic()
    assert closed_by_server(ch, timeout=MESSAGE_TIMEOUT + 3), "server kept the connection"
    assert time.monotonic() - start < MESSAGE_TIMEOUT + 2
    ch.close()
    still_serves(server.path)
    new = server.stats.errors[before:]
    assert len(new) == 1, f"expected one error, got {new}"
    assert "\n" not in new[0] and "Traceback" not in new[0]
    assert not new[0].startswith("internal error"), new[0]


def test_refusal_is_acked_when_reply_ack_was_negotiated(server):
    ch = connect(server.path)
    ch.send(R.SET_PROTOCOL_FEATURES, U64(1 << PF.REPLY_ACK))
    ch.send(R.SET_VRING_NUM, STATE(9, 64), need_reply=True)
    ack = ch.recv()
    assert ack.request == R.SET_VRING_NUM and ack.header.is_reply
    assert P.decode_u64(ack.payload) != 0
    # The refusal did not end the session: a good request is acked with 0.
    ch.send(R.SET_VRING_NUM, STATE(0, 64), need_reply=True)
    assert P.decode_u64(ch.recv().payload) == 0
    ch.close()
    still_serves(server.path)


def test_hostile_ring_stops_device_and_signals_err_fd(server):
    """Rings pointing outside shared memory: the device stops (needs reset),
    tells the front-end on the error eventfd, and writes nothing."""
    t = VhostUserTransport(server.path, ID_ENTROPY, ram_size=1 << 20)
    try:
        dev = RawDevice(t, 1 << 32, 16)
        canary = bytes(range(256)) * 16
        t.memory.write(0x80000, canary)
        # a device-writable buffer far outside the 1 MiB that was shared
        dev.submit(0, [], [(0x40000000, 64)], 1)
        deadline = time.monotonic() + 5
        while not t.read_status() & 64:
            assert time.monotonic() < deadline, "device did not report DEVICE_NEEDS_RESET"
            t.wait_interrupts(0.2)
        assert t.memory.read(0x80000, len(canary)) == canary
        assert dev.queues[0].collect() == []  # nothing was completed
        t.write_status(0)
    finally:
        t.close()
    assert any("needs reset" in line for line in server.logs)
    still_serves(server.path)


def test_stalled_partial_message_times_out_and_next_is_served(server):
    ch = connect(server.path)
    ch.send_raw(hdr(R.SET_FEATURES, 8) + b"\0\0")   # and then nothing
    assert closed_by_server(ch, timeout=MESSAGE_TIMEOUT + 3)
    ch.close()
    still_serves(server.path)
    assert any("not completed" in e for e in server.stats.errors)


def test_abrupt_disconnect_with_rings_running(server):
    t = VhostUserTransport(server.path, ID_ENTROPY, ram_size=1 << 20)
    dev = RawDevice(t, 1 << 32, 16)
    dev.submit(0, [], [(0x80000, 32)], 1)
    dev.wait(0, {1})
    t.frontend.conn.close()  # no GET_VRING_BASE, no goodbye
    t.memory.close()
    still_serves(server.path)


# ---------------------------------------------------------------- fuzzing

REQUESTS = st.one_of(st.sampled_from([int(r) for r in R]), st.integers(0, 2**32 - 1))
FLAGS = st.one_of(st.just(P.VERSION), st.just(P.VERSION | P.FLAG_NEED_REPLY),
                  st.integers(0, 2**32 - 1))


@st.composite
def payloads(draw):
    kind = draw(st.sampled_from(["u64", "state", "addr", "table", "config", "raw"]))
    if kind == "u64":
        return U64(draw(st.integers(0, 2**64 - 1)))
    if kind == "state":
        return STATE(draw(st.integers(0, 3)), draw(st.sampled_from([0, 1, 2, 16, 100, 256,
                                                                   2**31])))
    if kind == "addr":
        return P.VringAddr(draw(st.integers(0, 2)), draw(st.integers(0, 3)),
                           *(draw(st.integers(0, 2**64 - 1)) for _ in range(4))).encode()
    if kind == "table":
        n = draw(st.integers(1, 3))
        regs = [region(draw(st.sampled_from([0, 0x1000, 0x8000, 2**63])),
                       draw(st.sampled_from([0, 0x1000, 0x10000, 0x20000])),
                       draw(st.sampled_from([0x100000, 0x101000, 0x200000])),
                       draw(st.sampled_from([0, 0x1000, 0x10000]))) for _ in range(n)]
        return table(*regs)
    if kind == "config":
        size = draw(st.integers(0, 64))
        return struct.pack("<III", draw(st.integers(0, 300)), size, 0) + bytes(size)
    return draw(st.binary(max_size=300))


@st.composite
def messages(draw):
    payload = draw(payloads())
    size = len(payload) if draw(st.booleans()) else draw(st.integers(0, 400))
    nfds = draw(st.integers(0, 3))
    fd_kind = draw(st.sampled_from(["efd", "memfd"]))
    return draw(REQUESTS), draw(FLAGS), size, payload, [fd_kind] * nfds


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(messages(), min_size=1, max_size=6))
def test_fuzzed_message_sequences_never_break_the_server(server, sequence):
    ch = connect(server.path)
    try:
        for request, flags, size, payload, kinds in sequence:
            fds = _fds(kinds)
            try:
                ch.send_raw(struct.pack("<III", request, flags, size) + payload, fds)
            except (BrokenPipeError, ConnectionResetError):
                break  # the server already hung up on an earlier message
            finally:
                for fd in fds:
                    os.close(fd)
    finally:
        ch.close()
    # Whatever that was, a quick handshake on a new connection is answered
    # promptly (a stalled partial message costs at most MESSAGE_TIMEOUT).
    probe = connect(server.path)
    try:
        probe.sock.settimeout(MESSAGE_TIMEOUT + 5)
        probe.send(R.GET_FEATURES)
        reply = probe.recv()
        assert reply.request == R.GET_FEATURES and reply.header.is_reply
    finally:
        probe.close()
    assert not any(e.startswith("internal error") for e in server.stats.errors), \
        server.stats.errors


def test_server_survives_the_fuzzing_and_moves_data(server):
    # Companion to the fuzz test on a fresh server: a full driver session.
    still_serves(server.path)


# A valid set-up, then hostile ring contents and a random tail: this reaches
# the states behind the handshake (a started device, kicks) that random
# single messages rarely get to.

# Descriptors that look real: addresses inside, across the end of and
# outside the 64 KiB region; lengths from empty to huge; every flag mix
# (NEXT 1, WRITE 2, INDIRECT 4, packed AVAIL 0x80 / USED 0x8000).
DESC_ADDR = st.sampled_from([0x9000, 0xA000, 0xFFF8, 0x10000, 0x100000, 2**64 - 8])
DESC_LEN = st.sampled_from([0, 1, 16, 48, 4096, 0x10000, 2**32 - 1])
DESC_FLAGS = st.sampled_from([0, 1, 2, 3, 4, 5, 6, 0x80, 0x82, 0x83, 0x84, 0x8080, 0x8002, 0x81])


@st.composite
def descriptor_tables(draw):
    n = draw(st.integers(1, 16))
    return b"".join(struct.pack("<QIHH", draw(DESC_ADDR), draw(DESC_LEN), draw(DESC_FLAGS),
                                draw(st.integers(0, 20))) for _ in range(n))


@st.composite
def sessions(draw):
    return {
        "packed": draw(st.booleans()),
        "event_idx": draw(st.booleans()),
        "indirect": draw(st.booleans()),
        # mostly plausible set-ups (so the device really runs), some not
        "num": draw(st.sampled_from([1, 2, 8, 16, 16, 64, 256, 512])),
        "ring_at": draw(st.sampled_from([0x0, 0x0, 0x4000, 0x8000, 0xF000, 0x10000])),
        "base": draw(st.sampled_from([0, 0, 0x80008000, 0x80008000, 1, 5, 0xFFFF,
                                      0x7FFF0001])),
        "ring_bytes": draw(st.one_of(st.binary(max_size=512), descriptor_tables())),
        "avail": draw(st.lists(st.integers(0, 20), max_size=6)),
        "kicks": draw(st.integers(0, 3)),
        "tail": draw(st.lists(messages(), max_size=3)),
    }


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(sessions())
def test_fuzzed_rings_behind_a_valid_setup(server, plan):
    region_size = 1 << 16
    mem = SharedRegion(0, region_size, "fuzz")
    ch = connect(server.path)
    fds: list[int] = []
    ch.send(R.GET_FEATURES)
    offered = P.decode_u64(ch.recv().payload)
    ch.send(R.SET_PROTOCOL_FEATURES, U64(1 << PF.REPLY_ACK))
    want = (1 << 32) | (1 << P.F_PROTOCOL_FEATURES)
    for flag, bit_no in (("packed", 34), ("event_idx", 29), ("indirect", 28)):
        if plan[flag]:
            want |= 1 << bit_no
    ch.send(R.SET_FEATURES, U64(want & offered))
    ch.send(R.SET_MEM_TABLE, table(mem.describe()), [mem.fd], need_reply=True)
    assert P.decode_u64(ch.recv().payload) == 0  # a good table is accepted
    try:
        desc = mem.user_addr + plan["ring_at"]
        ch.send(R.SET_VRING_NUM, STATE(0, plan["num"]))
        ch.send(R.SET_VRING_ADDR, P.VringAddr(0, 0, desc, desc + 0x2000, desc + 0x1000).encode())
        ch.send(R.SET_VRING_BASE, STATE(0, plan["base"]))
        kick, call, err = efd(), efd(), efd()
        fds += [kick, call, err]
        ch.send(R.SET_VRING_CALL, P.vring_file_payload(0, True), [call])
        ch.send(R.SET_VRING_ERR, P.vring_file_payload(0, True), [err])
        ch.send(R.SET_VRING_KICK, P.vring_file_payload(0, True), [kick])
        ch.send(R.SET_VRING_ENABLE, STATE(0, 1))
        off = plan["ring_at"]
        raw = plan["ring_bytes"][: region_size - off]
        mem.mem[off:off + len(raw)] = raw
        # split: the available ring sits at +0x1000 (flags, idx, entries)
        avail = struct.pack("<HH", 0, len(plan["avail"])) + b"".join(
            struct.pack("<H", i) for i in plan["avail"])
        if off + 0x1000 + len(avail) <= region_size:
            mem.mem[off + 0x1000:off + 0x1000 + len(avail)] = avail
        for _ in range(plan["kicks"]):
            os.eventfd_write(kick, 1)
        for request, flags, size, payload, kinds in plan["tail"]:
            extra = _fds(kinds)
            try:
                ch.send_raw(struct.pack("<III", request, flags, size) + payload, extra)
            finally:
                for fd in extra:
                    os.close(fd)
    except (BrokenPipeError, ConnectionResetError):
        pass  # the server hung up on something it did not like: allowed
    finally:
        ch.close()
        for fd in fds:
            os.close(fd)
        mem.close()
    probe = connect(server.path)
    try:
        probe.sock.settimeout(MESSAGE_TIMEOUT + 5)
        probe.send(R.GET_FEATURES)
        assert probe.recv().header.is_reply
    finally:
        probe.close()
    assert not any(e.startswith("internal error") for e in server.stats.errors), \
        server.stats.errors


def test_config_read_beyond_the_device_layout_is_refused(sockdir):
    logs: list[str] = []
    s = Server(str(sockdir / "c.sock"), lambda: BlkDevice(MemoryStorage(1 << 20)),
               log=logs.append, message_timeout=MESSAGE_TIMEOUT)
    thread = s.serve_in_thread()
    try:
        ch = connect(s.path)
        ch.send(R.SET_PROTOCOL_FEATURES, U64(1 << PF.REPLY_ACK | 1 << PF.CONFIG))
        ch.send(R.GET_CONFIG, P.ConfigSpace(0, 8).encode())
        reply = P.ConfigSpace.decode(ch.recv().payload)
        assert struct.unpack("<Q", reply.data)[0] == (1 << 20) // 512   # capacity in sectors
        ch.send(R.GET_CONFIG, P.ConfigSpace(200, 56).encode())      # virtio-blk config is 60 bytes
        assert closed_by_server(ch)
        ch.close()
        assert any("config read refused" in e for e in s.stats.errors)
    finally:
        s.stop()
        thread.join(5)
        s.close()


def test_sessions_leave_no_file_descriptors_or_mappings_behind(serve_process):
    """A long-running back-end must not accumulate fds or guest mappings."""
    sock, proc = serve_process("--type", "rng")

    def counts() -> tuple[int, int]:
        with open(f"/proc/{proc.pid}/maps") as f:
            maps = sum("memfd:" in line for line in f)
        return len(os.listdir(f"/proc/{proc.pid}/fd")), maps

    def settled(expect: tuple[int, int] | None) -> tuple[int, int]:
        # the server closes a session just after the front-end sees EOF
        deadline = time.monotonic() + 3
        c = counts()
        while (c[1] != 0 if expect is None else c != expect) and time.monotonic() < deadline:
            time.sleep(0.02)
            c = counts()
        return c

    still_serves(sock)
    before = settled(None)
    assert before[1] == 0
    for _ in range(5):
        still_serves(sock)
        for case in ("mem-table-guest-overlap", "two-fds-on-call", "mem-table-beyond-file"):
            ch = connect(sock)
            for data, kinds in CASES[case]:
                fds = _fds(kinds)
                ch.send_raw(data, fds)
                for fd in fds:
                    os.close(fd)
            assert closed_by_server(ch)
            ch.close()
    assert settled(before) == before
