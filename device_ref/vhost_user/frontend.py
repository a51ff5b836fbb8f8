"""The vhost-user front-end: what a VMM does to bring up a back-end device.

``Frontend`` negotiates features, shares memfd memory, configures vrings and
reads config space over one socket; it knows nothing about ring layouts.
``VhostUserTransport`` (further down) hands that to the reference driver.
"""
from __future__ import annotations

import os
import select
from dataclasses import dataclass, field

from device_ref.vhost_user import protocol as P
from device_ref.vhost_user.connection import Connection, FrontendError
from device_ref.vhost_user.memory import SharedRegion
from device_ref.vhost_user.protocol import ProtocolFeature as PF
from device_ref.vhost_user.protocol import Request

# Protocol features this front-end understands and asks for when offered.
SUPPORTED_PROTOCOL = P.bits(PF.MQ, PF.REPLY_ACK, PF.CONFIG)

FEATURE_NAMES = {28: "INDIRECT_DESC", 29: "EVENT_IDX", 30: "PROTOCOL_FEATURES",
                 32: "VERSION_1", 33: "ACCESS_PLATFORM", 34: "RING_PACKED", 35: "IN_ORDER",
                 44: "SWIOTLB"}


def feature_name(bit: int) -> str:
    name = FEATURE_NAMES.get(bit)
    return f"{name} (bit {bit})" if name else f"bit {bit}"


@dataclass
class Vring:
    """Front-end bookkeeping for one configured vring."""
    index: int
    size: int
    kick_fd: int
    call_fd: int
    enabled: bool = False

    def kick(self) -> None:
        os.eventfd_write(self.kick_fd, 1)

    def close(self) -> None:
        for fd in (self.kick_fd, self.call_fd):
            try:
                os.close(fd)
            except OSError:
                pass


@dataclass
class BackendInfo:
    """What the back-end offered during the handshake."""
    features: int
    protocol_features: int = 0
    queue_num: int = 1
    acked_protocol: int = 0


@dataclass
class Frontend:
    """One front-end session with a vhost-user back-end."""
    path: str
    timeout: float = 5.0
    conn: Connection = field(init=False)
    info: BackendInfo | None = None
    features: int = 0
    regions: list[SharedRegion] = field(default_factory=list)
    vrings: dict[int, Vring] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.conn = Connection(self.path, self.timeout)

    # ------------------------------------------------------------ handshake

    def handshake(self, required_protocol: int = 0,
                  wanted_protocol: int = SUPPORTED_PROTOCOL) -> BackendInfo:
        """GET_FEATURES, protocol features, SET_OWNER, queue count."""
        features = self.conn.get_u64(Request.GET_FEATURES)
        info = BackendInfo(features)
        if features & (1 << P.F_PROTOCOL_FEATURES):
            info.protocol_features = self.conn.get_u64(Request.GET_PROTOCOL_FEATURES)
            missing = required_protocol & ~info.protocol_features
            if missing:
                names = ", ".join(PF(b).name for b in range(64) if missing >> b & 1 and b in
                                  PF._value2member_map_) or f"{missing:#x}"
                raise FrontendError(f"{self.path}: back-end lacks required protocol feature "
                                    f"{names}")
            info.acked_protocol = info.protocol_features & (wanted_protocol | required_protocol)
            self.conn.request(Request.SET_PROTOCOL_FEATURES, P.encode_u64(info.acked_protocol),
                              ack=False)
            self.conn.reply_ack = bool(info.acked_protocol & (1 << PF.REPLY_ACK))
        elif required_protocol:
            raise FrontendError(f"{self.path}: back-end does not offer PROTOCOL_FEATURES "
                                f"(bit {P.F_PROTOCOL_FEATURES})")
        self.conn.request(Request.SET_OWNER)
        if info.acked_protocol & (1 << PF.MQ):
            info.queue_num = self.conn.get_u64(Request.GET_QUEUE_NUM)
            if info.queue_num == 0:
                raise FrontendError(f"{self.path}: back-end reports 0 queues")
        self.info = info
        return info

    def require_features(self, required: int) -> None:
        assert self.info is not None, "handshake first"
        missing = required & ~self.info.features
        if missing:
            names = ", ".join(feature_name(b) for b in range(128) if missing >> b & 1)
            raise FrontendError(f"{self.path}: back-end lacks required feature {names}")

    def set_features(self, features: int) -> None:
        """Ack ``features`` (virtio bits; PROTOCOL_FEATURES is kept if offered)."""
        assert self.info is not None, "handshake first"
        extra = features & ~self.info.features
        if extra:
            raise FrontendError(f"{self.path}: cannot accept features the back-end did not "
                                f"offer: {extra:#x}")
        if self.info.features & (1 << P.F_PROTOCOL_FEATURES):
            features |= 1 << P.F_PROTOCOL_FEATURES
        self.conn.request(Request.SET_FEATURES, P.encode_u64(features))
        self.features = features

    def get_config(self, offset: int, size: int) -> bytes:
        assert self.info is not None, "handshake first"
        if not self.info.acked_protocol & (1 << PF.CONFIG):
            raise FrontendError(f"{self.path}: back-end does not offer the CONFIG protocol feature")
        reply = self.conn.request(Request.GET_CONFIG, P.ConfigSpace(offset, size).encode())
        assert reply is not None
        for fd in reply.fds:
            os.close(fd)
        try:
            space = P.ConfigSpace.decode(reply.payload)
        except P.ProtocolError as exc:
            raise FrontendError(f"{self.path}: bad GET_CONFIG reply: {exc}") from None
        if space.size != size or space.offset != offset:
            raise FrontendError(f"{self.path}: GET_CONFIG answered {space.size} bytes at "
                                f"{space.offset}, asked {size} at {offset}")
        return space.data

    # ------------------------------------------------------------ memory

    def set_mem_table(self, regions: list[SharedRegion]) -> None:
        """Share exactly these regions; the back-end sees nothing else."""
        payload = P.encode_mem_table([r.describe() for r in regions])
        # QEMU always asks for an ack here, because the back-end must have
        # mapped the memory before any ring address refers to it.
        self.conn.request(Request.SET_MEM_TABLE, payload, [r.fd for r in regions],
                          ack=self.conn.reply_ack)
        self.regions = list(regions)

    def user_addr(self, guest_addr: int, length: int) -> int:
        for r in self.regions:
            if r.contains(guest_addr, length):
                return r.user_addr + (guest_addr - r.guest_addr)
        raise FrontendError(f"guest address {guest_addr:#x}+{length} is not in shared memory")

    # ------------------------------------------------------------ vrings

    def setup_vring(self, index: int, size: int, desc: int, avail: int, used: int,
                    desc_len: int, avail_len: int, used_len: int, base: int = 0) -> Vring:
        """SET_VRING_NUM/ADDR/BASE/KICK/CALL for one ring (guest addresses in)."""
        addr = P.VringAddr(index, 0, self.user_addr(desc, desc_len), self.user_addr(used, used_len),
                           self.user_addr(avail, avail_len))
        self.conn.request(Request.SET_VRING_NUM, P.VringState(index, size).encode())
        self.conn.request(Request.SET_VRING_ADDR, addr.encode())
        self.conn.request(Request.SET_VRING_BASE, P.VringState(index, base).encode())
        flags = os.EFD_NONBLOCK | os.EFD_CLOEXEC
        vring = Vring(index, size, os.eventfd(0, flags), os.eventfd(0, flags))
        self.conn.request(Request.SET_VRING_CALL, P.vring_file_payload(index, True),
                          [vring.call_fd])
        self.conn.request(Request.SET_VRING_KICK, P.vring_file_payload(index, True),
                          [vring.kick_fd])
        old = self.vrings.pop(index, None)
        if old is not None:
            old.close()
        self.vrings[index] = vring
        return vring

    def enable_vring(self, index: int, enable: bool = True) -> None:
        if self.features & (1 << P.F_PROTOCOL_FEATURES):
            self.conn.request(Request.SET_VRING_ENABLE, P.VringState(index, int(enable)).encode())
        self.vrings[index].enabled = enable

    def get_vring_base(self, index: int) -> int:
        """Stop the ring; the back-end reports where it stopped."""
        reply = self.conn.request(Request.GET_VRING_BASE, P.VringState(index, 0).encode())
        assert reply is not None
        for fd in reply.fds:
            os.close(fd)
        try:
            state = P.VringState.decode(reply.payload, "GET_VRING_BASE reply")
        except P.ProtocolError as exc:
            raise FrontendError(f"{self.path}: {exc}") from None
        return state.num

    def wait_call(self, index: int, timeout: float | None = None) -> None:
        """Block until the back-end signals the ring's call eventfd.

        Also watches the socket, so a back-end that dies mid-request is
        reported at once instead of after the timeout.
        """
        vring = self.vrings[index]
        limit = self.timeout if timeout is None else timeout
        poller = select.poll()
        poller.register(vring.call_fd, select.POLLIN)
        poller.register(self.conn.fileno(), select.POLLIN | select.POLLHUP)
        events = poller.poll(limit * 1000)
        for fd, ev in events:
            if fd == vring.call_fd:
                try:
                    os.eventfd_read(vring.call_fd)
                except BlockingIOError:
                    pass
                return
        if events and not self.conn.peer_alive():
            raise FrontendError(f"{self.path}: back-end closed the connection with a request "
                                f"in flight on queue {index}")
        if not events:
            raise FrontendError(f"{self.path}: no completion on queue {index} within {limit:g} s")
        raise FrontendError(f"{self.path}: unexpected message from the back-end while "
                            f"waiting on queue {index}")

    def close(self) -> None:
        for v in self.vrings.values():
            v.close()
        self.vrings.clear()
        self.conn.close()
