"""The display end a vhost-user GPU back-end talks to (GPU_SET_SOCKET).

The parsing is strict: every malformed message is refused with one line,
and the served end stops, records that line and hangs up instead of
raising in its thread or guessing.
"""
from __future__ import annotations

import socket
import struct
import time

import pytest

from device_ref.devices.rng import RngDevice
from device_ref.vhost_user.connection import FrontendError
from device_ref.vhost_user.frontend import VhostUserTransport
from device_ref.vhost_user.gpu_display import (FLAG_REPLY, HEADER, RECT, SCANOUT, SCANOUTS,
                                               DisplayEnd, DisplayProtocolError,
                                               DisplayRequest as R, DisplayState, decode_header,
                                               host_config)
from device_ref.virtio_constants import GPU_CONFIG, GPU_HDR, GPU_MAX_SCANOUTS, GPU_RESP

from .served import Served


def msg(request: int, payload: bytes = b"", flags: int = 0) -> bytes:
    return HEADER.pack(request, flags, len(payload)) + payload


def update(sid: int, x: int, y: int, w: int, h: int, pixels: bytes) -> bytes:
    return RECT.pack(sid, x, y, w, h) + pixels


BAD = [
    (R.GET_PROTOCOL_FEATURES, b"\0", "payload is 1 bytes, expected 0"),
    (R.SET_PROTOCOL_FEATURES, b"\0" * 4, "payload is 4 bytes, expected 8"),
    (R.SET_PROTOCOL_FEATURES, struct.pack("<Q", 1), "was not offered"),
    (R.GET_DISPLAY_INFO, b"x", "GET_DISPLAY_INFO: payload is 1 bytes"),
    (R.CURSOR_UPDATE, b"\0" * 12, "CURSOR_UPDATE: payload is 12 bytes"),
    (R.SCANOUT, b"\0" * 8, "SCANOUT: payload is 8 bytes, expected 12"),
    (R.SCANOUT, SCANOUT.pack(GPU_MAX_SCANOUTS, 4, 4), "scanout 16 does not exist"),
    (R.UPDATE, b"\0" * 10, "shorter than its 20-byte rectangle"),
    (R.UPDATE, update(0, 0, 0, 2, 2, bytes(15)), "15 bytes of pixels for a 2x2 rectangle"),
    (R.UPDATE, update(99, 0, 0, 1, 1, bytes(4)), "scanout 99 does not exist"),
    (R.DMABUF_SCANOUT, bytes(40), "takes 2D updates only"),
    (77, b"abc", "unknown message 77 (3 bytes)"),
]


@pytest.mark.parametrize("request_, payload, words", BAD)
def test_malformed_messages_are_refused_with_one_line(request_, payload, words):
    with pytest.raises(DisplayProtocolError) as err:
        DisplayState().handle(request_, payload)
    assert words in str(err.value)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("head, words", [
    (b"\1\0\0", "short header: 3 of 12 bytes"),
    (HEADER.pack(3, FLAG_REPLY, 0), "carries the reply flag"),
    (HEADER.pack(8, 0, 0xFFFF_FFFF), "exceeds the limit"),
])
def test_bad_headers_are_refused(head, words):
    with pytest.raises(DisplayProtocolError, match=words):
        decode_header(head)


def test_display_info_and_features_answers():
    state = DisplayState()
    reply = state.handle(R.GET_PROTOCOL_FEATURES, b"")
    assert reply == msg(R.GET_PROTOCOL_FEATURES, struct.pack("<Q", 0), FLAG_REPLY)
    assert state.handle(R.SET_PROTOCOL_FEATURES, struct.pack("<Q", 0)) is None
    reply = state.handle(R.GET_DISPLAY_INFO, b"")
    request, flags, size = HEADER.unpack_from(reply)
    assert (request, flags, size) == (R.GET_DISPLAY_INFO, FLAG_REPLY, GPU_HDR + 16 * 24)
    body = reply[HEADER.size:]
    assert struct.unpack_from("<I", body)[0] == GPU_RESP["OK_DISPLAY_INFO"]
    modes = [struct.unpack_from("<6I", body, GPU_HDR + 24 * i) for i in range(16)]
    assert [m[4] for m in modes].count(1) == SCANOUTS == 1
    assert modes[0][2] and modes[0][3]
    edid = state.handle(R.GET_EDID, struct.pack("<I", 0))
    assert struct.unpack_from("<I", edid, HEADER.size)[0] == GPU_RESP["ERR_UNSPEC"]


def test_scanout_keeps_the_pixels_it_was_sent_clipped_to_its_size():
    state = DisplayState()
    assert state.screen() == (0, 0, b"")
    state.handle(R.SCANOUT, SCANOUT.pack(0, 2, 2))
    # blue, green, red, unused per pixel; a 3-wide update hangs off the edge
    px = bytes([1, 2, 3, 0, 4, 5, 6, 0, 7, 8, 9, 0])
    state.handle(R.UPDATE, update(0, 0, 1, 3, 1, px))
    w, h, rgb = state.screen()
    assert (w, h) == (2, 2)
    assert rgb == bytes(6) + bytes([3, 2, 1, 6, 5, 4])
    state.handle(R.SCANOUT, SCANOUT.pack(0, 0, 0))
    assert state.screen() == (0, 0, b"")


def test_host_config_fills_in_the_display_fields_only():
    off, size = GPU_CONFIG["num_scanouts"]
    raw = bytes(range(1, 17))
    got = host_config(0, raw)
    assert got[:8] == bytes(8)
    assert int.from_bytes(got[off:off + size], "little") == SCANOUTS
    assert got[12:] == raw[12:]
    assert host_config(10, b"\xff\xff\xff") == b"\0\0\xff"


def wait_for(cond, seconds: float = 2.0) -> None:
    deadline = time.monotonic() + seconds
    while not cond():
        assert time.monotonic() < deadline
        time.sleep(0.01)


def test_served_end_answers_then_stops_on_garbage_with_one_line():
    display = DisplayEnd()
    backend = socket.socket(fileno=display.backend_fd)
    display.backend_fd = None
    try:
        backend.settimeout(2)
        backend.sendall(msg(R.GET_PROTOCOL_FEATURES))
        reply = backend.recv(64)
        assert reply == msg(R.GET_PROTOCOL_FEATURES, struct.pack("<Q", 0), FLAG_REPLY)
        backend.sendall(msg(R.SCANOUT, b"\0\0"))
        wait_for(lambda: display.error is not None)
        assert display.error == "display socket: SCANOUT: payload is 2 bytes, expected 12"
        assert backend.recv(1) == b""          # it hung up
    finally:
        backend.close()
        display.close()
    assert not display.serving


def test_served_end_reports_a_message_cut_short():
    display = DisplayEnd()
    backend = socket.socket(fileno=display.backend_fd)
    display.backend_fd = None
    try:
        backend.sendall(HEADER.pack(R.UPDATE, 0, 100) + b"\0" * 10)
        backend.shutdown(socket.SHUT_WR)
        wait_for(lambda: display.error is not None)
        assert display.error == ("display socket: connection closed inside a message "
                                 "(10 of 100 bytes)")
    finally:
        backend.close()
        display.close()


def test_screen_shows_an_update_sent_just_before_it_is_read():
    display = DisplayEnd()
    backend = socket.socket(fileno=display.backend_fd)
    display.backend_fd = None
    try:
        for i in range(50):
            px = bytes([i, 0, 0, 0]) * 4
            backend.sendall(msg(R.SCANOUT, SCANOUT.pack(0, 2, 2)) +
                            msg(R.UPDATE, update(0, 0, 0, 2, 2, px)))
            assert display.screen() == (2, 2, bytes([0, 0, i]) * 4)
    finally:
        backend.close()
        display.close()


def test_a_backend_that_refuses_the_display_socket_is_a_one_line_setup_error(tmp_path):
    path = str(tmp_path / "rng.sock")
    served = Served(path, RngDevice)
    try:
        with pytest.raises(FrontendError) as err:
            VhostUserTransport(path, 16, display=True)
    finally:
        served.close()
    line = str(err.value)
    assert "\n" not in line
    assert "GPU_SET_SOCKET" in line and "is this a vhost-user GPU back-end?" in line
