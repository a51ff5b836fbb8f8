"""A small client for the GDB remote serial protocol, as QEMU's gdbstub speaks it.

Only what a host-side virtio driver needs: packets with checksums and
acknowledgements (and no-ack mode when the stub offers it), the stop query
``?``, QEMU's physical-memory mode (``Qqemu.PhyMemMode:1``), memory reads and
writes (``m`` / ``M``), and continuing / stopping the vCPUs (``c`` and the
0x03 interrupt byte).

Why not a library: the Python packages for this protocol either drive a
``gdb`` binary through its machine interface (pygdbmi), are unmaintained
wrappers for serial targets (pyrsp, last released 2019), or are whole
exploitation frameworks (pwntools, avatar2). The subset needed here is a
page of code.

Protocol facts used: a packet is ``$`` data ``#`` two hex checksum digits
(the data's byte sum modulo 256); the receiver answers ``+`` (good) or
``-`` (resend); in data, ``}`` escapes the next byte XOR 0x20 and ``*``
introduces a run-length repeat; an empty reply means "not supported";
``E`` followed by two hex digits is an error. While the target runs, the
stub takes any byte as a request to stop, and reports the stop with a stop
reply (``S`` or ``T`` packet).
"""
from __future__ import annotations

import socket
import time

INTERRUPT = b"\x03"
MAX_MEMORY_CHUNK = 1024   # bytes per m/M packet: well inside QEMU's 4 KiB packet limit


class GdbRemoteError(Exception):
    """The stub misbehaved, refused a request, went away or did not answer in time."""


def checksum(data: bytes) -> int:
    return sum(data) & 0xFF


def frame(data: bytes) -> bytes:
    """``data`` as one packet on the wire, with the bytes the protocol
    reserves escaped."""
    out = bytearray()
    for b in data:
        if b in b"#$}*":
            out += bytes((0x7D, b ^ 0x20))
        else:
            out.append(b)
    return b"$" + bytes(out) + b"#" + b"%02x" % checksum(bytes(out))


def decode_body(body: bytes) -> bytes:
    """Undo escapes and run-length encoding in a received packet body."""
    out = bytearray()
    i = 0
    while i < len(body):
        b = body[i]
        if b == 0x7D and i + 1 < len(body):
            out.append(body[i + 1] ^ 0x20)
            i += 2
        elif b == 0x2A and out and i + 1 < len(body):   # '*': repeat the last byte
            out += bytes((out[-1],)) * (body[i + 1] - 29)
            i += 2
        else:
            out.append(b)
            i += 1
    return bytes(out)


def is_stop_reply(reply: bytes) -> bool:
    return reply[:1] in (b"S", b"T")


class GdbRemote:
    """One connection to a gdbstub. ``timeout`` bounds every wait for the stub."""

    def __init__(self, sock: socket.socket, timeout: float = 5.0) -> None:
        self.sock = sock
        self.timeout = timeout
        self.sock.settimeout(timeout)
        self._buf = bytearray()
        self.ack = True
        self.running = False
        self.packets = 0

    @classmethod
    def connect_unix(cls, path: str, timeout: float = 5.0, retry_for: float = 5.0) -> "GdbRemote":
        """Connect to a stub listening on a Unix socket, retrying while it starts."""
        deadline = time.monotonic() + retry_for
        while True:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                sock.connect(path)
                return cls(sock, timeout)
            except (FileNotFoundError, ConnectionRefusedError) as exc:
                sock.close()
                if time.monotonic() >= deadline:
                    raise GdbRemoteError(f"no gdbstub listening on {path}: {exc.strerror}") from None
                time.sleep(0.02)

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass

    # -- wire ------------------------------------------------------------
    def _recv_more(self, deadline: float) -> None:
        left = deadline - time.monotonic()
        if left <= 0:
            raise GdbRemoteError(f"gdbstub did not answer within {self.timeout:g} s")
        self.sock.settimeout(left)
        try:
            chunk = self.sock.recv(4096)
        except socket.timeout:
            raise GdbRemoteError(f"gdbstub did not answer within {self.timeout:g} s") from None
        except OSError as exc:
            raise GdbRemoteError(f"gdbstub connection failed: {exc.strerror or exc}") from None
        if not chunk:
            raise GdbRemoteError("gdbstub closed the connection (did QEMU exit?)")
        self._buf += chunk

    def _send_raw(self, data: bytes) -> None:
        try:
            self.sock.sendall(data)
        except OSError as exc:
            raise GdbRemoteError(f"gdbstub connection failed: {exc.strerror or exc}") from None

    def _read_packet(self, deadline: float) -> bytes:
        """The next packet's decoded body; stray acks before it are dropped."""
        while True:
            start = self._buf.find(b"$")
            if start < 0:
                self._buf.clear()      # only acks or noise so far
                self._recv_more(deadline)
                continue
            end = self._buf.find(b"#", start)
            if end < 0 or len(self._buf) < end + 3:
                self._recv_more(deadline)
                continue
            body = bytes(self._buf[start + 1:end])
            sent_sum = bytes(self._buf[end + 1:end + 3])
            del self._buf[:end + 3]
            try:
                ok = int(sent_sum, 16) == checksum(body)
            except ValueError:
                ok = False
            if self.ack:
                self._send_raw(b"+" if ok else b"-")
            if ok:
                return decode_body(body)
            if not self.ack:
                raise GdbRemoteError(f"bad checksum on a packet from the stub: {body[:40]!r}")

    def _wait_ack(self, deadline: float) -> bool:
        """True for '+', False for '-' (resend)."""
        while True:
            for i, b in enumerate(self._buf):
                if b == 0x2B:
                    del self._buf[:i + 1]
                    return True
                if b == 0x2D:
                    del self._buf[:i + 1]
                    return False
                if b == 0x24:   # a packet before the ack: keep it for _read_packet
                    return True
            self._recv_more(deadline)

    def _send_packet(self, data: bytes, deadline: float) -> None:
        wire = frame(data)
        for _ in range(3):
            self._send_raw(wire)
            if not self.ack or self._wait_ack(deadline):
                self.packets += 1
                return
        raise GdbRemoteError(f"gdbstub rejected packet {data[:40]!r} three times")

    def request(self, data: bytes | str, timeout: float | None = None) -> bytes:
        """Send one command packet (the target must be stopped) and return the reply."""
        if self.running:
            raise GdbRemoteError("the target is running: stop it before sending a command")
        if isinstance(data, str):
            data = data.encode()
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        self._send_packet(data, deadline)
        return self._read_packet(deadline)

    def checked(self, data: bytes | str) -> bytes:
        """``request`` that turns an error or an empty (unsupported) reply into an exception."""
        reply = self.request(data)
        what = data if isinstance(data, str) else data.decode(errors="replace")
        if reply == b"":
            raise GdbRemoteError(f"gdbstub does not support {what[:40]!r}")
        if len(reply) == 3 and reply[:1] == b"E":
            raise GdbRemoteError(f"gdbstub refused {what[:40]!r}: error {reply[1:].decode()}")
        return reply

    # -- session ---------------------------------------------------------
    def start(self) -> bytes:
        """Open the session: features, no-ack mode when offered, and the
        current stop reason (connecting stops QEMU's vCPUs)."""
        # QEMU stops the vCPUs when a debugger connects and may report that
        # stop unprompted: skip stop replies until the qSupported answer.
        supported = self.request("qSupported:multiprocess-;swbreak+;hwbreakpoint+")
        for _ in range(4):
            if not is_stop_reply(supported):
                break
            supported = self._read_packet(time.monotonic() + self.timeout)
        if b"QStartNoAckMode+" in supported:
            if self.request("QStartNoAckMode") == b"OK":
                self.ack = False
        reason = self.request("?")
        if not is_stop_reply(reason):
            raise GdbRemoteError(f"unexpected stop reason from the stub: {reason[:40]!r}")
        return reason

    def physical_memory_mode(self) -> None:
        """Make m/M address guest-physical memory (QEMU extension)."""
        if self.checked("Qqemu.PhyMemMode:1") != b"OK":
            raise GdbRemoteError("gdbstub did not enter physical memory mode")

    def read_memory(self, addr: int, length: int) -> bytes:
        out = bytearray()
        while length > 0:
            n = min(length, MAX_MEMORY_CHUNK)
            reply = self.checked(f"m{addr:x},{n:x}")
            try:
                data = bytes.fromhex(reply.decode())
            except ValueError:
                raise GdbRemoteError(f"malformed memory reply {reply[:40]!r}") from None
            if len(data) != n:
                raise GdbRemoteError(f"asked for {n} bytes at {addr:#x}, got {len(data)}")
            out += data
            addr += n
            length -= n
        return bytes(out)

    def write_memory(self, addr: int, data: bytes) -> None:
        for pos in range(0, len(data), MAX_MEMORY_CHUNK):
            part = data[pos:pos + MAX_MEMORY_CHUNK]
            reply = self.checked(f"M{addr + pos:x},{len(part):x}:{part.hex()}")
            if reply != b"OK":
                raise GdbRemoteError(f"memory write at {addr + pos:#x} answered {reply[:40]!r}")

    def resume(self) -> None:
        """Let the vCPUs run (``c``); the stub answers only when they stop."""
        if self.running:
            return
        self._send_packet(b"c", time.monotonic() + self.timeout)
        self.running = True

    def interrupt(self) -> bytes:
        """Stop running vCPUs and return the stop reply."""
        if not self.running:
            return b""
        deadline = time.monotonic() + self.timeout
        self._send_raw(INTERRUPT)
        while True:
            reply = self._read_packet(deadline)
            if is_stop_reply(reply):
                self.running = False
                return reply
            # output packets ('O...') from the target are informational
