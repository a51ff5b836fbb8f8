"""The vhost-user front-end: what a VMM does to bring up a back-end device.

``Frontend`` negotiates features, shares memfd memory, configures vrings and
reads config space over one socket; it knows nothing about ring layouts.
``VhostUserTransport`` (further down) hands that to the reference driver.
"""
from __future__ import annotations

import os
import select
from dataclasses import dataclass, field
from typing import Callable

from device_ref.ring.memory import GuestMemory as RingMemory
from device_ref.transport import (BounceRegion, ConfigUnavailable, DriverTransport, Interrupts,
                                  MmioBounceDescription, QueueConfig, TransportError)
from device_ref.virtio_constants import DEVICE_NEEDS_RESET, DRIVER_OK, F_SWIOTLB, FEATURES_OK
from device_ref.vhost_user import protocol as P
from device_ref.vhost_user.connection import Connection, FrontendError
from device_ref.vhost_user.gpu_display import DisplayEnd, host_config
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
    err_fd: int | None = None
    enabled: bool = False

    def kick(self) -> None:
        os.eventfd_write(self.kick_fd, 1)

    def close(self) -> None:
        for fd in (self.kick_fd, self.call_fd, self.err_fd):
            if fd is None:
                continue
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
            raise ConfigUnavailable(f"{self.path}: back-end does not offer the CONFIG protocol "
                                    f"feature")
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
        vring = Vring(index, size, os.eventfd(0, flags), os.eventfd(0, flags),
                      os.eventfd(0, flags))
        self.conn.request(Request.SET_VRING_CALL, P.vring_file_payload(index, True),
                          [vring.call_fd])
        assert vring.err_fd is not None
        self.conn.request(Request.SET_VRING_ERR, P.vring_file_payload(index, True),
                          [vring.err_fd])
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

    def set_gpu_socket(self, fd: int) -> None:
        """Hand a GPU back-end the socket of the host's display."""
        try:
            self.conn.request(Request.GPU_SET_SOCKET, b"", [fd])
        except FrontendError as exc:
            raise FrontendError(f"{exc} (a gpu device type needs a back-end that takes the "
                                f"display socket: is this a vhost-user GPU back-end?)") from None

    def close(self) -> None:
        for v in self.vrings.values():
            v.close()
        self.vrings.clear()
        self.conn.close()


# ====================================================================
# The transport the reference driver is handed
# ====================================================================

# vhost-user protocol features (30) and dirty logging (VHOST_F_LOG_ALL, 26)
# are between front-end and back-end, never offered to a driver.
VHOST_ONLY_FEATURES = 1 << P.F_PROTOCOL_FEATURES | 1 << 26


class FrontendMemory(RingMemory):
    """Guest memory as the driver sees it: memfd regions at guest addresses."""

    def __init__(self, ram: list[SharedRegion], bounce: SharedRegion | None):
        super().__init__()
        self.shared_ram = ram
        self.bounce = bounce
        for r in ram + ([bounce] if bounce else []):
            self.add_region(r.guest_addr, r.mem)

    def ram(self) -> list[tuple[int, int]]:
        return [(r.guest_addr, r.size) for r in self.shared_ram]

    def close(self) -> None:
        for r in self.shared_ram + ([self.bounce] if self.bounce else []):
            r.close()


@dataclass
class _QueueSetup:
    config: QueueConfig | None = None
    enabled: bool = False
    started: bool = False


class VhostUserTransport(DriverTransport):
    """A vhost-user back-end seen as a virtio device by the reference driver.

    Register writes that matter to a back-end become vhost-user requests:
    FEATURES_OK sends SET_FEATURES; DRIVER_OK shares memory and starts the
    enabled queues; a reset stops them with GET_VRING_BASE. vhost-user does
    not say what device type or ring size a back-end has, so the front-end
    is told (``device_id``, ``queue_size``), as QEMU is by its -device.

    With ``display`` (a GPU back-end) the front-end also plays the host's
    display: right after the handshake it hands the back-end one end of a
    socket pair (GPU_SET_SOCKET) and serves the other (``DisplayEnd``).

    With a ``bounce`` region the back-end is offered VIRTIO_F_SWIOTLB: once
    the driver accepts it, only the bounce region is put in the memory
    table, so the back-end process cannot map any other guest memory.
    """

    def __init__(self, path: str, device_id: int, *, ram_size: int = 16 << 20,
                 bounce: BounceRegion | None = None, queue_size: int = 256,
                 num_queues: int | None = None, timeout: float = 5.0,
                 required_protocol: int = 0, display: bool = False):
        self.path = path
        self._device_id = device_id
        self.frontend = Frontend(path, timeout)
        self.display: DisplayEnd | None = None
        try:
            self.info = self.frontend.handshake(required_protocol=required_protocol)
            if display:
                self.display = DisplayEnd()
                assert self.display.backend_fd is not None
                self.frontend.set_gpu_socket(self.display.backend_fd)
                self.display.release_backend_fd()
        except BaseException:
            self._close_display()
            self.frontend.close()
            raise
        if bounce is not None and not self.info.features >> F_SWIOTLB & 1:
            bounce = None  # a device that does not offer SWIOTLB carries no bounce region
        ram = [SharedRegion(0, ram_size, "guest-ram")]
        bounce_region = (SharedRegion(bounce.base, bounce.size, "bounce")
                         if bounce is not None else None)
        self.memory = FrontendMemory(ram, bounce_region)
        self._bounce = bounce
        self._queue_size = queue_size
        self._num_queues = num_queues or self.info.queue_num
        self.status = 0
        self.driver_features = 0
        self.queues = [_QueueSetup() for _ in range(self._num_queues)]
        self.needs_reset = False
        self._err_irqs = 0     # error-eventfd notifications not yet reported

    # ------------------------------------------------------------ identity
    def ram_ranges(self) -> list[tuple[int, int]]:
        return self.memory.ram()

    def device_id(self) -> int:
        return self._device_id

    def num_queues(self) -> int:
        return self._num_queues

    def read_device_features(self) -> int:
        # What a VMM shows its guest: the vhost-only bits stay between the
        # two processes.
        return self.info.features & ~VHOST_ONLY_FEATURES

    def write_driver_features(self, features: int) -> None:
        self.driver_features = features

    def bounce_description(self) -> MmioBounceDescription | None:
        if self._bounce is None:
            return None
        return MmioBounceDescription(self._bounce.base, self._bounce.size)

    # ------------------------------------------------------------ status
    def read_status(self) -> int:
        self._poll_errors()
        return self.status | (DEVICE_NEEDS_RESET if self.needs_reset else 0)

    def write_status(self, status: int) -> None:
        if status == 0:
            self._stop_all()
            # The back-end signals DEVICE_NEEDS_RESET on every vring's error
            # eventfd, one after another: a signal the driver had not read
            # yet belongs to before this reset (the rings are stopped, the
            # back-end has answered), so read it now, not as a new error.
            self._poll_errors()
            self.status = 0
            self.driver_features = 0
            self.needs_reset = False
            self.queues = [_QueueSetup() for _ in range(self._num_queues)]
            return
        new = status & ~self.status
        if new & FEATURES_OK:
            if self.driver_features & ~self.read_device_features():
                return  # FEATURES_OK does not stick, as on a real device
            self.frontend.set_features(self.driver_features)
        self.status = status
        if new & DRIVER_OK:
            self._share_memory()
            for q, setup in enumerate(self.queues):
                if setup.enabled:
                    self._start_queue(q)

    def _share_memory(self) -> None:
        mem = self.memory
        if self.driver_features >> F_SWIOTLB & 1:
            if mem.bounce is None:
                raise TransportError(f"{self.path}: VIRTIO_F_SWIOTLB accepted without a bounce "
                                     f"region")
            self.frontend.set_mem_table([mem.bounce])
        else:
            self.frontend.set_mem_table(mem.shared_ram + ([mem.bounce] if mem.bounce else []))

    # ------------------------------------------------------------ config
    def config_generation(self) -> int:
        return 0  # vhost-user reads config in one message: no torn reads

    def read_config(self, offset: int, length: int) -> bytes:
        if length == 0:
            return b""
        data = self.frontend.get_config(offset, length)
        # the display's fields (num_scanouts, events) are the front-end's
        return host_config(offset, data) if self.display is not None else data

    def write_config(self, offset: int, data: bytes) -> None:
        self.frontend.conn.request(Request.SET_CONFIG,
                                   P.ConfigSpace(offset, len(data), 0, data).encode())

    # ------------------------------------------------------------ queues
    def queue_max_size(self, queue: int) -> int:
        self._check_queue(queue)
        return self._queue_size

    def _check_queue(self, queue: int) -> None:
        if not 0 <= queue < self._num_queues:
            raise TransportError(f"queue {queue} does not exist ({self._num_queues} queues)")

    def set_queue(self, queue: int, config: QueueConfig) -> None:
        self._check_queue(queue)
        self.queues[queue].config = config

    def enable_queue(self, queue: int) -> None:
        self._check_queue(queue)
        setup = self.queues[queue]
        if setup.config is None:
            raise TransportError(f"queue {queue} enabled before it was configured")
        setup.enabled = True
        if self.status & DRIVER_OK:
            self._start_queue(queue)

    def _start_queue(self, queue: int, base: int | None = None) -> None:
        setup = self.queues[queue]
        cfg = setup.config
        assert cfg is not None
        packed = bool(self.driver_features >> 34 & 1)
        if packed:
            lens = (16 * cfg.size, 4, 4)
        else:
            lens = (16 * cfg.size, 6 + 2 * cfg.size, 6 + 8 * cfg.size)
        if base is None:  # fresh ring; packed wrap counters start at 1
            base = 0x80008000 if packed else 0
        self.frontend.setup_vring(queue, cfg.size, cfg.desc, cfg.driver, cfg.device, *lens,
                                  base=base)
        self.frontend.enable_vring(queue)
        setup.started = True

    def _stop_all(self) -> dict[int, int]:
        bases = {}
        for q, setup in enumerate(self.queues):
            if setup.started:
                bases[q] = self.frontend.get_vring_base(q)
                setup.started = False
        return bases

    def stop_queues(self) -> dict[int, int]:
        """Stop every running ring (GET_VRING_BASE) without a device reset;
        returns where each stopped, as a VMM does before migrating."""
        return self._stop_all()

    def start_queues(self, bases: dict[int, int]) -> None:
        """Restart stopped rings where they stopped (SET_VRING_BASE)."""
        for q, base in sorted(bases.items()):
            self._start_queue(q, base)

    def restart_queue_at(self, queue: int, index: int, rewrite: Callable[[], None]) -> bool:
        self._check_queue(queue)
        if not self.queues[queue].started:
            raise TransportError(f"queue {queue} is not running")
        self.frontend.get_vring_base(queue)      # the back-end stops the ring here
        self.queues[queue].started = False
        rewrite()
        self._start_queue(queue, index)
        return True

    def resend_memory_table(self) -> None:
        """Send the same memory table again while rings run (as a VMM does
        when its memory layout changes); the back-end must keep its place."""
        self._share_memory()

    # ------------------------------------------------------------ notifications
    def notify(self, queue: int) -> None:
        vring = self.frontend.vrings.get(queue)
        if vring is None:
            raise TransportError(f"queue {queue} is not running")
        vring.kick()

    # A back-end signals DEVICE_NEEDS_RESET on a vring's error eventfd: that
    # is the configuration change notification. Every one counts, whether a
    # status read or an interrupt wait consumed it.
    def _poll_errors(self) -> None:
        for v in self.frontend.vrings.values():
            if v.err_fd is None:
                continue
            try:
                os.eventfd_read(v.err_fd)
            except BlockingIOError:
                continue
            self.needs_reset = True
            self._err_irqs += 1

    def _drain(self) -> Interrupts:
        got = Interrupts()
        for q, v in self.frontend.vrings.items():
            try:
                os.eventfd_read(v.call_fd)
            except BlockingIOError:
                continue
            got.queues[q] = got.queues.get(q, 0) + 1
        self._poll_errors()
        got.config += self._err_irqs
        self._err_irqs = 0
        return got

    def take_interrupts(self) -> Interrupts:
        got = self._drain()
        self._check_alive()
        return got

    def _check_alive(self) -> None:
        if not self.frontend.conn.peer_alive():
            raise FrontendError(f"{self.path}: back-end closed the connection")

    def wait_interrupts(self, timeout: float) -> Interrupts:
        got = self._drain()
        if got:
            return got
        poller = select.poll()
        for v in self.frontend.vrings.values():
            poller.register(v.call_fd, select.POLLIN)
            if v.err_fd is not None:
                poller.register(v.err_fd, select.POLLIN)
        poller.register(self.frontend.conn.fileno(), select.POLLIN | select.POLLHUP)
        events = poller.poll(max(timeout, 0) * 1000)
        got = self._drain()
        sock = self.frontend.conn.fileno()
        if not got and any(fd == sock for fd, _ in events):
            in_flight = any(s.started for s in self.queues)
            if not self.frontend.conn.peer_alive():
                raise FrontendError(f"{self.path}: back-end closed the connection"
                                    + (" with requests in flight" if in_flight else ""))
            # Nothing was asked: a message now breaks the protocol (and would
            # keep the socket readable, turning this wait into a busy loop).
            try:
                msg = self.frontend.conn.channel.recv()
                msg.close_fds()
                what = P.request_name(msg.request)
            except (P.ProtocolError, P.PeerClosed, OSError) as exc:
                what = f"bytes ({exc})"
            raise FrontendError(f"{self.path}: unexpected {what} from the back-end")
        return got

    def _close_display(self) -> None:
        if self.display is not None:
            self.display.close()
            self.display = None

    def close(self) -> None:
        try:
            self.frontend.close()
            self._close_display()
        finally:
            self.memory.close()
