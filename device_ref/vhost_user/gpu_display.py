"""The host's display end of a vhost-user GPU back-end.

A vhost-user GPU back-end does not answer display commands on its own: it
asks the front-end's display through a second socket, handed over with
VHOST_USER_GPU_SET_SOCKET, in the "vhost-user-gpu" protocol (QEMU's
docs/interop/vhost-user-gpu.rst). ``DisplayEnd`` is that display: one
enabled scanout of a fixed size, no EDID (the protocol feature is not
offered, which is how the protocol says no), and a copy of what the
back-end last put on each scanout so a test can compare pixels.

It runs in a thread of its own: the back-end may ask (display information)
or send (pixel updates) at any time while the suite waits on a ring, and a
back-end blocked on a full display socket would stop answering the ring.

The message parsing is pure and strict: a message that breaks the protocol
raises ``DisplayProtocolError`` with one line; the display end then stops
and reports that line instead of guessing.
"""
from __future__ import annotations

import enum
import os
import select
import socket
import struct
import threading
from dataclasses import dataclass, field

from device_ref.virtio_constants import GPU_CONFIG, GPU_HDR, GPU_MAX_SCANOUTS, GPU_RESP

HEADER = struct.Struct("<III")          # request, flags, payload size
FLAG_REPLY = 0x4
U64 = struct.Struct("<Q")
SCANOUT = struct.Struct("<III")         # scanout id, width, height
CURSOR_POS = struct.Struct("<III")      # scanout id, x, y
RECT = struct.Struct("<IIIII")          # scanout id, x, y, width, height
DMABUF_SCANOUT = struct.Struct("<10I")
CURSOR_IMAGE = 64 * 64 * 4              # a cursor image: 64x64 pixels, 4 bytes each
CURSOR_UPDATE_SIZE = CURSOR_POS.size + 8 + CURSOR_IMAGE   # position, hot spot, image
BYTES_PER_PIXEL = 4                     # every 2D format the device takes is 32 bits
EDID_RESPONSE = GPU_HDR + 8 + 1024      # response header, size, padding, the EDID block
# The largest message the display accepts: a full update of a 4096x4096 scanout.
MAX_PAYLOAD = RECT.size + 4096 * 4096 * BYTES_PER_PIXEL
MAX_FDS = 1

# The one scanout this display has, and its size.
SCANOUTS = 1
DISPLAY_WIDTH = 1024
DISPLAY_HEIGHT = 768
PMODE = struct.Struct("<6I")            # x, y, width, height, enabled, flags


class DisplayRequest(enum.IntEnum):
    """Message numbers of the vhost-user-gpu protocol."""
    GET_PROTOCOL_FEATURES = 1
    SET_PROTOCOL_FEATURES = 2
    GET_DISPLAY_INFO = 3
    CURSOR_POS = 4
    CURSOR_POS_HIDE = 5
    CURSOR_UPDATE = 6
    SCANOUT = 7
    UPDATE = 8
    DMABUF_SCANOUT = 9
    DMABUF_UPDATE = 10
    GET_EDID = 11
    DMABUF_SCANOUT2 = 12


PROTOCOL_F_EDID = 0
# What this display offers: nothing optional (no EDID).
OFFERED_PROTOCOL = 0


class DisplayProtocolError(Exception):
    """The back-end broke the vhost-user-gpu protocol; the line says how."""


def request_name(number: int) -> str:
    try:
        return DisplayRequest(number).name
    except ValueError:
        return f"message {number}"


# ---------------------------------------------------------------- parsing


def decode_header(data: bytes) -> tuple[int, int, int]:
    """(request, flags, size) of one message header."""
    if len(data) != HEADER.size:
        raise DisplayProtocolError(f"short header: {len(data)} of {HEADER.size} bytes")
    request, flags, size = HEADER.unpack(data)
    if flags & FLAG_REPLY:
        raise DisplayProtocolError(f"{request_name(request)} carries the reply flag, but the "
                                   f"display asked nothing")
    if size > MAX_PAYLOAD:
        raise DisplayProtocolError(f"{request_name(request)}: payload size {size} exceeds the "
                                   f"limit of {MAX_PAYLOAD}")
    return request, flags, size


def _sized(request: int, payload: bytes, size: int) -> None:
    if len(payload) != size:
        raise DisplayProtocolError(f"{request_name(request)}: payload is {len(payload)} bytes, "
                                   f"expected {size}")


@dataclass(frozen=True)
class Update:
    scanout: int
    x: int
    y: int
    width: int
    height: int
    pixels: bytes


def decode_update(payload: bytes) -> Update:
    if len(payload) < RECT.size:
        raise DisplayProtocolError(f"UPDATE: payload is {len(payload)} bytes, shorter than its "
                                   f"{RECT.size}-byte rectangle")
    scanout, x, y, w, h = RECT.unpack_from(payload)
    pixels = payload[RECT.size:]
    if len(pixels) != w * h * BYTES_PER_PIXEL:
        raise DisplayProtocolError(f"UPDATE: {len(pixels)} bytes of pixels for a {w}x{h} "
                                   f"rectangle (expected {w * h * BYTES_PER_PIXEL})")
    return Update(scanout, x, y, w, h, bytes(pixels))


def encode_reply(request: int, payload: bytes) -> bytes:
    return HEADER.pack(request, FLAG_REPLY, len(payload)) + payload


def display_info() -> bytes:
    """A GET_DISPLAY_INFO reply: the response header, then one mode per
    possible scanout; only scanout 0 is enabled."""
    head = struct.pack("<IIQIB3x", GPU_RESP["OK_DISPLAY_INFO"], 0, 0, 0, 0)
    modes = [PMODE.pack(0, 0, DISPLAY_WIDTH, DISPLAY_HEIGHT, 1, 0)]
    modes += [bytes(PMODE.size)] * (GPU_MAX_SCANOUTS - 1)
    return head + b"".join(modes)


# Configuration fields the display, not the back-end, owns: a vhost-user
# GPU back-end leaves them for its front-end to fill in (QEMU's front-end
# does the same), since only the front-end knows its display.
HOST_CONFIG = {"events_read": 0, "events_clear": 0, "num_scanouts": SCANOUTS}


def host_config(offset: int, data: bytes) -> bytes:
    """``data``, read from the back-end's config space at ``offset``, with
    the display's own fields put in."""
    out = bytearray(data)
    for name, value in HOST_CONFIG.items():
        at, size = GPU_CONFIG[name]
        field_bytes = value.to_bytes(size, "little")
        for i in range(size):
            pos = at + i - offset
            if 0 <= pos < len(out):
                out[pos] = field_bytes[i]
    return bytes(out)


def edid_refusal() -> bytes:
    """A GET_EDID reply for a display that offered no EDID: an error
    response with no EDID block."""
    return struct.pack("<IIQIB3x", GPU_RESP["ERR_UNSPEC"], 0, 0, 0, 0) + bytes(
        EDID_RESPONSE - GPU_HDR)


# ---------------------------------------------------------------- state


@dataclass
class Scanout:
    width: int
    height: int
    pixels: bytearray      # as the back-end sent them: 4 bytes a pixel, B G R X

    def blit(self, u: Update) -> None:
        """Copy the part of the update that falls on the scanout."""
        row = u.width * BYTES_PER_PIXEL
        for line in range(u.height):
            y = u.y + line
            if y >= self.height or u.x >= self.width:
                break
            cols = min(u.width, self.width - u.x)
            src = line * row
            dst = (y * self.width + u.x) * BYTES_PER_PIXEL
            self.pixels[dst:dst + cols * BYTES_PER_PIXEL] = u.pixels[src:src + cols *
                                                                      BYTES_PER_PIXEL]

    def rgb(self) -> bytes:
        out = bytearray(self.width * self.height * 3)
        out[0::3] = self.pixels[2::4]
        out[1::3] = self.pixels[1::4]
        out[2::3] = self.pixels[0::4]
        return bytes(out)


@dataclass
class DisplayState:
    """What the back-end has told the display so far."""
    protocol_features: int = 0
    scanouts: dict[int, Scanout] = field(default_factory=dict)
    cursor: tuple[int, int, int] | None = None     # scanout, x, y (None: hidden)
    counts: dict[str, int] = field(default_factory=dict)

    def handle(self, request: int, payload: bytes) -> bytes | None:
        """Apply one message; the bytes to send back, if it asks for any."""
        name = request_name(request)
        self.counts[name] = self.counts.get(name, 0) + 1
        if request == DisplayRequest.GET_PROTOCOL_FEATURES:
            _sized(request, payload, 0)
            return encode_reply(request, U64.pack(OFFERED_PROTOCOL))
        if request == DisplayRequest.SET_PROTOCOL_FEATURES:
            _sized(request, payload, U64.size)
            features = U64.unpack(payload)[0]
            if features & ~OFFERED_PROTOCOL:
                raise DisplayProtocolError(f"SET_PROTOCOL_FEATURES: {features:#x} was not "
                                           f"offered (offered {OFFERED_PROTOCOL:#x})")
            self.protocol_features = features
            return None
        if request == DisplayRequest.GET_DISPLAY_INFO:
            _sized(request, payload, 0)
            return encode_reply(request, display_info())
        if request == DisplayRequest.GET_EDID:
            _sized(request, payload, 4)
            return encode_reply(request, edid_refusal())
        if request in (DisplayRequest.CURSOR_POS, DisplayRequest.CURSOR_POS_HIDE):
            _sized(request, payload, CURSOR_POS.size)
            self.cursor = (CURSOR_POS.unpack(payload) if request == DisplayRequest.CURSOR_POS
                           else None)
            return None
        if request == DisplayRequest.CURSOR_UPDATE:
            _sized(request, payload, CURSOR_UPDATE_SIZE)
            self.cursor = CURSOR_POS.unpack_from(payload)
            return None
        if request == DisplayRequest.SCANOUT:
            _sized(request, payload, SCANOUT.size)
            sid, w, h = SCANOUT.unpack(payload)
            self._check_scanout(request, sid)
            if w and h:
                self.scanouts[sid] = Scanout(w, h, bytearray(w * h * BYTES_PER_PIXEL))
            else:
                self.scanouts.pop(sid, None)
            return None
        if request == DisplayRequest.UPDATE:
            u = decode_update(payload)
            self._check_scanout(request, u.scanout)
            shown = self.scanouts.get(u.scanout)
            if shown is not None:
                shown.blit(u)
            return None
        if request in (DisplayRequest.DMABUF_SCANOUT, DisplayRequest.DMABUF_UPDATE,
                       DisplayRequest.DMABUF_SCANOUT2):
            raise DisplayProtocolError(f"{name}: this display takes 2D updates only")
        raise DisplayProtocolError(f"unknown {name} ({len(payload)} bytes)")

    def _check_scanout(self, request: int, sid: int) -> None:
        if sid >= GPU_MAX_SCANOUTS:
            raise DisplayProtocolError(f"{request_name(request)}: scanout {sid} does not exist "
                                       f"(at most {GPU_MAX_SCANOUTS})")

    def screen(self, sid: int = 0) -> tuple[int, int, bytes]:
        shown = self.scanouts.get(sid)
        if shown is None:
            return 0, 0, b""
        return shown.width, shown.height, shown.rgb()


# ---------------------------------------------------------------- the end


class DisplayEnd:
    """The display side of a socket pair, served by a thread.

    ``backend_fd`` is the other half, to be sent with GPU_SET_SOCKET and
    then closed (``release_backend_fd``). Messages are read and handled
    only under the lock, whole: ``screen`` first handles whatever is
    already waiting, so an update the back-end sent before it completed a
    command is always on show when the command's answer has been seen.
    """

    def __init__(self, timeout: float = 5.0) -> None:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        ours.settimeout(timeout)       # a message cut off mid-way is an error, not a hang
        self.sock = ours
        self.backend_fd: int | None = theirs.detach()
        self.state = DisplayState()
        self.error: str | None = None
        self._stopped = False
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._serve, name="vhost-user-gpu-display",
                                        daemon=True)
        self._thread.start()

    def release_backend_fd(self) -> None:
        if self.backend_fd is not None:
            os.close(self.backend_fd)
            self.backend_fd = None

    def _recv_exact(self, size: int, at_boundary: bool) -> bytes | None:
        chunks = []
        remaining = size
        while remaining:
            data, fds, _flags, _ = socket.recv_fds(self.sock, min(remaining, 1 << 20),
                                                   MAX_FDS + 1)
            for fd in fds:     # no message of ours carries one; never keep them
                os.close(fd)
            if not data:
                if at_boundary and remaining == size:
                    return None
                raise DisplayProtocolError(f"connection closed inside a message "
                                           f"({size - remaining} of {size} bytes)")
            chunks.append(data)
            remaining -= len(data)
        return b"".join(chunks)

    def _waiting(self) -> bool:
        return bool(select.select([self.sock], [], [], 0)[0])

    def _drain(self) -> bool:
        """Handle every message already waiting (the lock held); False once
        the end has stopped: the back-end hung up or broke the protocol."""
        if self._stopped:
            return False
        try:
            while self._waiting():
                head = self._recv_exact(HEADER.size, True)
                if head is None:
                    self._stop(None)
                    return False
                request, _flags, size = decode_header(head)
                payload = self._recv_exact(size, False) if size else b""
                answer = self.state.handle(request, payload or b"")
                if answer is not None:
                    self.sock.sendall(answer)
            return True
        except DisplayProtocolError as exc:
            self._stop(f"display socket: {exc}")
        except OSError as exc:
            self._stop(f"display socket: {exc.strerror or exc}")
        return False

    def _stop(self, error: str | None) -> None:
        self.error = error
        self._stopped = True
        # a display that stopped listening hangs up, so the back-end sees it
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def _serve(self) -> None:
        poller = select.poll()
        poller.register(self.sock, select.POLLIN)
        while True:
            poller.poll()
            with self._lock:
                if not self._drain():
                    return

    @property
    def serving(self) -> bool:
        return self._thread.is_alive()

    def screen(self, sid: int = 0) -> tuple[int, int, bytes]:
        with self._lock:
            self._drain()
            return self.state.screen(sid)

    def close(self) -> None:
        self.release_backend_fd()
        with self._lock:
            if not self._stopped:
                self._stop(None)
        self._thread.join(2.0)
        self.sock.close()
