"""The wire format, checked against the layouts the vhost-user document
gives (little-endian, 12-byte header, version 1 in the low flag bits)."""
from __future__ import annotations

import os
import socket
import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from device_ref.vhost_user import protocol as P


def test_header_layout():
    # request u32, flags u32 (version 1, bit 2 reply, bit 3 need-reply), size u32
    assert P.encode_header(5, 40, need_reply=True) == struct.pack("<III", 5, 0x9, 40)
    assert P.encode_header(1, 8, reply=True) == struct.pack("<III", 1, 0x5, 8)
    h = P.decode_header(struct.pack("<III", 24, 0x1, 20))
    assert (h.request, h.size, h.need_reply, h.is_reply) == (24, 20, False, False)


def test_request_numbers_match_the_protocol_document():
    R = P.Request
    assert (R.GET_FEATURES, R.SET_MEM_TABLE, R.SET_VRING_KICK, R.SET_VRING_ERR) == (1, 5, 12, 14)
    assert (R.GET_PROTOCOL_FEATURES, R.GET_QUEUE_NUM, R.SET_VRING_ENABLE) == (15, 17, 18)
    assert (R.GET_CONFIG, R.SET_CONFIG, R.GET_MAX_MEM_SLOTS) == (24, 25, 36)
    PF = P.ProtocolFeature
    assert (PF.MQ, PF.REPLY_ACK, PF.CONFIG, PF.STATUS) == (0, 3, 9, 16)


def test_memory_table_layout():
    regions = [P.MemRegion(0, 0x1000, 0x7f0000000000, 0), P.MemRegion(0x100000, 0x2000, 0x1000, 64)]
    raw = P.encode_mem_table(regions)
    # u32 count, u32 padding, then per region: guest addr, size, user addr, mmap offset (u64 each)
    assert raw[:8] == struct.pack("<II", 2, 0)
    assert raw[8:40] == struct.pack("<QQQQ", 0, 0x1000, 0x7f0000000000, 0)
    assert P.decode_mem_table(raw) == regions
    # senders may pad to the full 8-slot array
    assert P.decode_mem_table(raw + bytes(6 * 32)) == regions
    with pytest.raises(P.ProtocolError):
        P.decode_mem_table(raw + bytes(32))


def test_vring_address_and_file_layouts():
    a = P.VringAddr(1, 0, 0x1000, 0x3000, 0x2000, 0)
    # index, flags, then descriptor, used, available, log addresses
    assert a.encode() == struct.pack("<IIQQQQ", 1, 0, 0x1000, 0x3000, 0x2000, 0)
    assert P.decode_vring_file(struct.pack("<Q", 0x102)) == (2, False)
    assert P.decode_vring_file(struct.pack("<Q", 3)) == (3, True)


def test_config_layout():
    c = P.ConfigSpace(0, 8, 0, b"\x01" * 8)
    assert c.encode() == struct.pack("<III", 0, 8, 0) + b"\x01" * 8
    assert P.ConfigSpace.decode(c.encode()) == c


@given(st.binary(max_size=64))
def test_decoders_reject_or_accept_but_never_crash(data):
    for decode in (P.decode_mem_table, P.VringAddr.decode, P.VringState.decode,
                   P.ConfigSpace.decode, P.decode_vring_file, P.decode_single_region):
        try:
            decode(data)
        except P.ProtocolError:
            pass


def test_channel_carries_fds_and_closes_them_on_error():
    a, b = socket.socketpair()
    tx, rx = P.Channel(a), P.Channel(b)
    fd = os.eventfd(0)
    tx.send(P.Request.SET_VRING_CALL, P.vring_file_payload(0, True), [fd])
    msg = rx.recv()
    assert msg.request == P.Request.SET_VRING_CALL and len(msg.fds) == 1
    os.eventfd_write(msg.fds[0], 7)
    assert os.eventfd_read(fd) == 7  # the same eventfd crossed the socket
    msg.close_fds()
    extra = os.eventfd(0)
    tx.send_raw(struct.pack("<III", 1, 0, 0), [extra])  # bad version, with an fd
    os.close(extra)
    before = len(os.listdir("/proc/self/fd"))
    with pytest.raises(P.ProtocolError):
        rx.recv()
    assert len(os.listdir("/proc/self/fd")) == before  # the received fd was closed
    tx.close()
    with pytest.raises(P.PeerClosed):
        rx.recv()
    rx.close()
    os.close(fd)
