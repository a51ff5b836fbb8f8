"""The GDB remote protocol client against a scripted stub on a socket pair."""
from __future__ import annotations

import socket
import threading
import time

import pytest

from device_ref.qemu.gdb_remote import (GdbRemote, GdbRemoteError, checksum, decode_body, frame,
                                        is_stop_reply)


class ScriptedStub:
    """Plays a gdbstub: ``handler(packet_body) -> list of raw bytes to send``."""

    def __init__(self, handler, ack: bool = True, nack_first: bool = False) -> None:
        self.ours, self.theirs = socket.socketpair()
        self.handler = handler
        self.ack = ack
        self.nack_first = nack_first
        self.received: list[bytes] = []
        self.raw = bytearray()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            self._serve()
        except OSError:
            return     # the test closed the socket

    def _serve(self) -> None:
        buf = bytearray()
        while True:
            try:
                chunk = self.theirs.recv(4096)
            except OSError:
                return
            if not chunk:
                return
            self.raw += chunk
            buf += chunk
            while True:
                if buf[:1] in (b"+", b"-"):
                    del buf[:1]
                    continue
                if buf[:1] == b"\x03":
                    del buf[:1]
                    self._reply(self.handler(b"\x03"))
                    continue
                end = buf.find(b"#")
                if not buf.startswith(b"$") or end < 0 or len(buf) < end + 3:
                    break
                body = decode_body(bytes(buf[1:end]))
                del buf[:end + 3]
                self.received.append(body)
                if self.nack_first:
                    self.nack_first = False
                    self.theirs.sendall(b"-")
                    continue
                if self.ack:
                    self.theirs.sendall(b"+")
                self._reply(self.handler(body))

    def _reply(self, chunks) -> None:
        for c in chunks or ():
            self.theirs.sendall(c)

    def client(self, timeout: float = 1.0) -> GdbRemote:
        return GdbRemote(self.ours, timeout=timeout)

    def close(self) -> None:
        self.theirs.close()
        self.ours.close()


def qemu_like(memory: dict[int, int]):
    """A handler that answers like QEMU's stub, with byte-addressed memory."""
    def handle(body: bytes):
        text = body.decode()
        if body == b"\x03":
            return [frame(b"T02thread:01;")]
        if text.startswith("qSupported"):
            return [frame(b"PacketSize=1000;qXfer:features:read+")]
        if text == "?":
            return [frame(b"T05thread:01;")]
        if text == "Qqemu.PhyMemMode:1":
            return [frame(b"OK")]
        if text.startswith("m"):
            addr, n = (int(x, 16) for x in text[1:].split(","))
            return [frame(bytes(memory.get(addr + i, 0) for i in range(n)).hex().encode())]
        if text.startswith("M"):
            where, data = text[1:].split(":")
            addr, n = (int(x, 16) for x in where.split(","))
            for i, b in enumerate(bytes.fromhex(data)):
                memory[addr + i] = b
            return [frame(b"OK")]
        if text == "c":
            return []
        return [frame(b"")]
    return handle


@pytest.fixture
def stub_memory():
    return {}


def test_frame_escapes_reserved_bytes_and_checksums_the_wire_form():
    wire = frame(b"a#b$c}d*e")
    assert wire.startswith(b"$") and wire[-3:-2] == b"#"
    body = wire[1:-3]
    assert b"#" not in body and b"$" not in body
    assert int(wire[-2:], 16) == checksum(body)
    assert decode_body(body) == b"a#b$c}d*e"


def test_decode_body_expands_run_length_encoding():
    # '0* ' repeats '0' (0x20 - 29 =) 3 more times
    assert decode_body(b"0* ") == b"0000"


def test_stop_replies_are_recognised():
    assert is_stop_reply(b"T05thread:01;") and is_stop_reply(b"S05")
    assert not is_stop_reply(b"OK") and not is_stop_reply(b"")


def test_session_memory_and_run_control(stub_memory):
    stub = ScriptedStub(qemu_like(stub_memory))
    g = stub.client()
    try:
        assert g.start() == b"T05thread:01;"
        g.physical_memory_mode()
        g.write_memory(0x1000, b"\x01\x02\x03\x04")
        assert g.read_memory(0x1000, 4) == b"\x01\x02\x03\x04"
        assert stub_memory[0x1002] == 3
        g.resume()
        assert g.running
        with pytest.raises(GdbRemoteError, match="running"):
            g.read_memory(0, 1)
        assert g.interrupt() == b"T02thread:01;"
        assert not g.running
        assert b"\x03" in stub.raw
    finally:
        stub.close()


def test_long_memory_access_is_split_into_packets(stub_memory):
    stub = ScriptedStub(qemu_like(stub_memory))
    g = stub.client()
    try:
        data = bytes(range(256)) * 10
        g.write_memory(0x2000, data)
        assert g.read_memory(0x2000, len(data)) == data
        assert sum(1 for p in stub.received if p.startswith(b"M")) == 3
    finally:
        stub.close()


def test_unsolicited_stop_reply_before_qsupported_is_skipped(stub_memory):
    base = qemu_like(stub_memory)

    def handler(body):
        if body.startswith(b"qSupported"):
            return [frame(b"T02thread:01;")] + base(body)
        return base(body)
    stub = ScriptedStub(handler)
    g = stub.client()
    try:
        assert g.start() == b"T05thread:01;"
    finally:
        stub.close()


def test_bad_checksum_from_stub_is_nacked_and_resent_reply_taken(stub_memory):
    sent = {"n": 0}

    def handler(body):
        if body == b"?":
            sent["n"] += 1
            return [b"$T05#00", frame(b"T05")]   # a corrupt copy, then a good one
        return qemu_like(stub_memory)(body)
    stub = ScriptedStub(handler)
    g = stub.client()
    try:
        assert g.request("?") == b"T05"
        deadline = time.monotonic() + 2      # the stub's thread reads the nack on its own
        while b"-" not in stub.raw and time.monotonic() < deadline:
            time.sleep(0.01)
        assert b"-" in stub.raw
    finally:
        stub.close()


def test_nack_makes_the_client_resend():
    stub = ScriptedStub(lambda body: [frame(b"OK")], nack_first=True)
    g = stub.client()
    try:
        assert g.request("Qqemu.PhyMemMode:1") == b"OK"
        assert stub.received == [b"Qqemu.PhyMemMode:1"] * 2
    finally:
        stub.close()


def test_error_and_unsupported_replies_raise(stub_memory):
    def handler(body):
        if body.startswith(b"m"):
            return [frame(b"E14")]
        if body.startswith(b"Qqemu"):
            return [frame(b"")]
        return qemu_like(stub_memory)(body)
    stub = ScriptedStub(handler)
    g = stub.client()
    try:
        with pytest.raises(GdbRemoteError, match="error 14"):
            g.read_memory(0, 4)
        with pytest.raises(GdbRemoteError, match="does not support"):
            g.physical_memory_mode()
    finally:
        stub.close()


def test_silent_stub_times_out_with_a_clear_error():
    stub = ScriptedStub(lambda body: [])
    g = stub.client(timeout=0.2)
    try:
        with pytest.raises(GdbRemoteError, match="did not answer within 0.2 s"):
            g.request("?")
    finally:
        stub.close()


def test_closed_connection_is_reported():
    stub = ScriptedStub(lambda body: [])
    g = stub.client()
    stub.theirs.close()
    try:
        with pytest.raises(GdbRemoteError, match="closed|failed"):
            g.request("?")
    finally:
        stub.close()


def test_connect_to_missing_socket_fails_fast(tmp_path):
    with pytest.raises(GdbRemoteError, match="no gdbstub listening"):
        GdbRemote.connect_unix(str(tmp_path / "none.sock"), retry_for=0.1)
