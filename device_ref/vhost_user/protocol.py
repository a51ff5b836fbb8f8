"""The vhost-user wire format: request numbers, the header, payload layouts.

Everything here is a pure function of bytes, plus one small ``Channel`` that
moves whole messages and their file descriptors over a Unix stream socket.
Decoders check sizes strictly and raise ``ProtocolError``; they never guess.
"""
from __future__ import annotations

import enum
import os
import socket
import struct
from dataclasses import dataclass, field

HEADER = struct.Struct("<III")
HEADER_SIZE = HEADER.size  # 12
VERSION = 0x1
FLAG_VERSION_MASK = 0x3
FLAG_REPLY = 0x4
FLAG_NEED_REPLY = 0x8
# The largest payload either side accepts: a full memory table (8 regions) is
# 264 bytes, a config read 12 + 256. Anything bigger is malformed.
MAX_PAYLOAD = 4096
MAX_REGIONS = 8
MAX_CONFIG_SIZE = 256
MAX_FDS = 8

# Virtio feature bit that announces the vhost-user protocol-feature handshake.
F_PROTOCOL_FEATURES = 30

# Vring file messages (kick, call, err): low byte is the index, this bit
# says "no file descriptor attached" (polling mode).
VRING_IDX_MASK = 0xFF
VRING_NOFD_FLAG = 0x100


class ProtocolError(Exception):
    """A message that breaks the vhost-user rules; the connection is unusable."""


class Request(enum.IntEnum):
    """Front-end to back-end request numbers."""
    GET_FEATURES = 1
    SET_FEATURES = 2
    SET_OWNER = 3
    RESET_OWNER = 4
    SET_MEM_TABLE = 5
    SET_LOG_BASE = 6
    SET_LOG_FD = 7
    SET_VRING_NUM = 8
    SET_VRING_ADDR = 9
    SET_VRING_BASE = 10
    GET_VRING_BASE = 11
    SET_VRING_KICK = 12
    SET_VRING_CALL = 13
    SET_VRING_ERR = 14
    GET_PROTOCOL_FEATURES = 15
    SET_PROTOCOL_FEATURES = 16
    GET_QUEUE_NUM = 17
    SET_VRING_ENABLE = 18
    SEND_RARP = 19
    NET_SET_MTU = 20
    SET_BACKEND_REQ_FD = 21
    IOTLB_MSG = 22
    SET_VRING_ENDIAN = 23
    GET_CONFIG = 24
    SET_CONFIG = 25
    CREATE_CRYPTO_SESSION = 26
    CLOSE_CRYPTO_SESSION = 27
    POSTCOPY_ADVISE = 28
    POSTCOPY_LISTEN = 29
    POSTCOPY_END = 30
    GET_INFLIGHT_FD = 31
    SET_INFLIGHT_FD = 32
    GPU_SET_SOCKET = 33
    RESET_DEVICE = 34
    VRING_KICK = 35
    GET_MAX_MEM_SLOTS = 36
    ADD_MEM_REG = 37
    REM_MEM_REG = 38
    SET_STATUS = 39
    GET_STATUS = 40


class ProtocolFeature(enum.IntEnum):
    """Bit numbers of the vhost-user protocol features."""
    MQ = 0
    LOG_SHMFD = 1
    RARP = 2
    REPLY_ACK = 3
    MTU = 4
    BACKEND_REQ = 5
    CROSS_ENDIAN = 6
    CRYPTO_SESSION = 7
    PAGEFAULT = 8
    CONFIG = 9
    BACKEND_SEND_FD = 10
    HOST_NOTIFIER = 11
    INFLIGHT_SHMFD = 12
    RESET_DEVICE = 13
    INBAND_NOTIFICATIONS = 14
    CONFIGURE_MEM_SLOTS = 15
    STATUS = 16


# Requests whose reply is part of their definition (not a REPLY_ACK ack).
REPLYING = frozenset({Request.GET_FEATURES, Request.GET_PROTOCOL_FEATURES,
                      Request.GET_VRING_BASE, Request.GET_QUEUE_NUM, Request.GET_CONFIG,
                      Request.GET_MAX_MEM_SLOTS, Request.GET_STATUS, Request.GET_INFLIGHT_FD})


def request_name(number: int) -> str:
    try:
        return Request(number).name
    except ValueError:
        return f"request {number}"


def bits(*numbers: int) -> int:
    """A feature mask with the given bit numbers set."""
    mask = 0
    for n in numbers:
        mask |= 1 << n
    return mask


# ---------------------------------------------------------------- header


@dataclass(frozen=True)
class Header:
    request: int
    flags: int
    size: int

    @property
    def need_reply(self) -> bool:
        return bool(self.flags & FLAG_NEED_REPLY)

    @property
    def is_reply(self) -> bool:
        return bool(self.flags & FLAG_REPLY)


def encode_header(request: int, size: int, *, reply: bool = False,
                  need_reply: bool = False) -> bytes:
    flags = VERSION | (FLAG_REPLY if reply else 0) | (FLAG_NEED_REPLY if need_reply else 0)
    return HEADER.pack(request, flags, size)


def decode_header(data: bytes) -> Header:
    if len(data) != HEADER_SIZE:
        raise ProtocolError(f"short header: {len(data)} of {HEADER_SIZE} bytes")
    request, flags, size = HEADER.unpack(data)
    if flags & FLAG_VERSION_MASK != VERSION:
        raise ProtocolError(f"unsupported protocol version {flags & FLAG_VERSION_MASK}")
    if size > MAX_PAYLOAD:
        raise ProtocolError(f"payload size {size} exceeds the limit of {MAX_PAYLOAD}")
    return Header(request, flags, size)


# ---------------------------------------------------------------- payloads

U64 = struct.Struct("<Q")
VRING_STATE = struct.Struct("<II")
VRING_ADDR = struct.Struct("<IIQQQQ")
REGION = struct.Struct("<QQQQ")
MEM_TABLE_HEAD = struct.Struct("<II")
CONFIG_HEAD = struct.Struct("<III")


def _need(payload: bytes, size: int, what: str) -> None:
    if len(payload) != size:
        raise ProtocolError(f"{what}: payload is {len(payload)} bytes, expected {size}")


def encode_u64(value: int) -> bytes:
    return U64.pack(value)


def decode_u64(payload: bytes, what: str = "u64") -> int:
    _need(payload, U64.size, what)
    return U64.unpack(payload)[0]


@dataclass(frozen=True)
class VringState:
    index: int
    num: int

    def encode(self) -> bytes:
        return VRING_STATE.pack(self.index, self.num)

    @classmethod
    def decode(cls, payload: bytes, what: str = "vring state") -> "VringState":
        _need(payload, VRING_STATE.size, what)
        return cls(*VRING_STATE.unpack(payload))


@dataclass(frozen=True)
class VringAddr:
    """Ring part addresses, in the front-end's virtual address space."""
    index: int
    flags: int
    desc: int
    used: int
    avail: int
    log: int = 0

    def encode(self) -> bytes:
        return VRING_ADDR.pack(self.index, self.flags, self.desc, self.used, self.avail, self.log)

    @classmethod
    def decode(cls, payload: bytes) -> "VringAddr":
        _need(payload, VRING_ADDR.size, "vring address")
        return cls(*VRING_ADDR.unpack(payload))


@dataclass(frozen=True)
class MemRegion:
    guest_addr: int
    size: int
    user_addr: int
    mmap_offset: int

    def encode(self) -> bytes:
        return REGION.pack(self.guest_addr, self.size, self.user_addr, self.mmap_offset)


def encode_mem_table(regions: list[MemRegion]) -> bytes:
    if not 1 <= len(regions) <= MAX_REGIONS:
        raise ValueError(f"a memory table holds 1 to {MAX_REGIONS} regions")
    return MEM_TABLE_HEAD.pack(len(regions), 0) + b"".join(r.encode() for r in regions)


def decode_mem_table(payload: bytes) -> list[MemRegion]:
    if len(payload) < MEM_TABLE_HEAD.size:
        raise ProtocolError("memory table: payload too short for its count")
    count, _ = MEM_TABLE_HEAD.unpack_from(payload)
    if not 1 <= count <= MAX_REGIONS:
        raise ProtocolError(f"memory table: {count} regions (1 to {MAX_REGIONS} allowed)")
    # Senders put the count first and may send the full 8-slot array; accept
    # exactly the counted regions or the full array, nothing in between.
    counted = MEM_TABLE_HEAD.size + count * REGION.size
    full = MEM_TABLE_HEAD.size + MAX_REGIONS * REGION.size
    if len(payload) not in (counted, full):
        raise ProtocolError(f"memory table: payload is {len(payload)} bytes for {count} regions")
    return [MemRegion(*REGION.unpack_from(payload, MEM_TABLE_HEAD.size + i * REGION.size))
            for i in range(count)]


def encode_single_region(region: MemRegion) -> bytes:
    return U64.pack(0) + region.encode()


def decode_single_region(payload: bytes) -> MemRegion:
    _need(payload, U64.size + REGION.size, "memory region")
    return MemRegion(*REGION.unpack_from(payload, U64.size))


@dataclass(frozen=True)
class ConfigSpace:
    offset: int
    size: int
    flags: int = 0
    data: bytes = field(default=b"")

    def encode(self) -> bytes:
        body = self.data if self.data else bytes(self.size)
        return CONFIG_HEAD.pack(self.offset, self.size, self.flags) + body

    @classmethod
    def decode(cls, payload: bytes) -> "ConfigSpace":
        if len(payload) < CONFIG_HEAD.size:
            raise ProtocolError("config: payload too short for its header")
        offset, size, flags = CONFIG_HEAD.unpack_from(payload)
        if size > MAX_CONFIG_SIZE:
            raise ProtocolError(f"config: size {size} exceeds {MAX_CONFIG_SIZE}")
        if len(payload) != CONFIG_HEAD.size + size:
            raise ProtocolError(f"config: payload is {len(payload)} bytes for a size of {size}")
        return cls(offset, size, flags, bytes(payload[CONFIG_HEAD.size:]))


def vring_file_payload(index: int, has_fd: bool) -> bytes:
    return U64.pack((index & VRING_IDX_MASK) | (0 if has_fd else VRING_NOFD_FLAG))


def decode_vring_file(payload: bytes) -> tuple[int, bool]:
    """(index, has_fd) from a kick/call/err payload."""
    value = decode_u64(payload, "vring file")
    if value & ~(VRING_IDX_MASK | VRING_NOFD_FLAG):
        raise ProtocolError(f"vring file: reserved bits set in {value:#x}")
    return value & VRING_IDX_MASK, not value & VRING_NOFD_FLAG


# ---------------------------------------------------------------- channel


@dataclass
class Message:
    header: Header
    payload: bytes
    fds: list[int]

    @property
    def request(self) -> int:
        return self.header.request

    def close_fds(self) -> None:
        for fd in self.fds:
            try:
                os.close(fd)
            except OSError:
                pass
        self.fds = []

    def take_fds(self) -> list[int]:
        fds, self.fds = self.fds, []
        return fds


class PeerClosed(Exception):
    """The other end closed the connection."""


class Channel:
    """Whole vhost-user messages over a connected Unix stream socket."""

    def __init__(self, sock: socket.socket):
        self.sock = sock

    def close(self) -> None:
        self.sock.close()

    def send(self, request: int, payload: bytes = b"", fds: list[int] | tuple[int, ...] = (),
             *, reply: bool = False, need_reply: bool = False) -> None:
        data = encode_header(request, len(payload), reply=reply, need_reply=need_reply) + payload
        if fds:
            sent = socket.send_fds(self.sock, [data], list(fds))
        else:
            sent = self.sock.send(data)
        if sent < len(data):
            self.sock.sendall(data[sent:])

    def send_raw(self, data: bytes, fds: list[int] | tuple[int, ...] = ()) -> None:
        """Bytes as given (for tests that need malformed messages)."""
        if fds:
            sent = socket.send_fds(self.sock, [data], list(fds))
            if sent < len(data):
                self.sock.sendall(data[sent:])
        else:
            self.sock.sendall(data)

    def _recv_exact(self, size: int, fds: list[int], at_boundary: bool) -> bytes:
        chunks = []
        remaining = size
        while remaining:
            data, new_fds, flags, _ = socket.recv_fds(self.sock, remaining, MAX_FDS + 1)
            fds.extend(new_fds)
            if flags & socket.MSG_CTRUNC:
                raise ProtocolError("too many file descriptors attached")
            if not data:
                if not at_boundary or remaining != size:
                    raise ProtocolError(f"connection closed inside a message "
                                        f"({size - remaining} of {size} bytes)")
                raise PeerClosed()
            chunks.append(data)
            remaining -= len(data)
        return b"".join(chunks)

    def recv(self) -> Message:
        """One message; file descriptors may ride on any of its bytes."""
        fds: list[int] = []
        try:
            header = decode_header(self._recv_exact(HEADER_SIZE, fds, True))
            payload = self._recv_exact(header.size, fds, False) if header.size else b""
        except BaseException:
            for fd in fds:
                os.close(fd)
            raise
        if len(fds) > MAX_FDS:
            for fd in fds:
                os.close(fd)
            raise ProtocolError(f"{len(fds)} file descriptors attached (at most {MAX_FDS})")
        return Message(header, payload, fds)
