"""One vhost-user connection on the back-end side: every message checked,
then applied to the hosted device model.

A message that breaks the protocol raises ``ProtocolError`` (the server
ends the connection); a well-formed request the back-end will not carry out
raises ``Refused``, answered with a non-zero REPLY_ACK status when the
front-end asked for an ack. Guest memory is reached only through the
regions of the last SET_MEM_TABLE, handed to the device as a ring-core
memory map that bounds-checks every access.
"""
from __future__ import annotations

import os
import socket
from collections.abc import Callable
from dataclasses import dataclass

from device_ref.device.features import DEVICE_NEEDS_RESET, F_ACCESS_PLATFORM, FEATURES_OK
from device_ref.transport import QueueConfig, TransportError
from device_ref.vhost_user import protocol as P
from device_ref.vhost_user.memory import RegionTable
from device_ref.vhost_user.protocol import ProtocolError
from device_ref.vhost_user.protocol import ProtocolFeature as PF
from device_ref.vhost_user.protocol import Request
from device_ref.vhost_user.ring_memory import ring_memory, ring_start

OFFERED_PROTOCOL = P.bits(PF.MQ, PF.REPLY_ACK, PF.CONFIG)
# A partly sent message must be completed within this time; otherwise one
# stalled front-end would keep the server from everyone else.
MESSAGE_TIMEOUT = 5.0


class Refused(Exception):
    """A well-formed request this back-end will not carry out."""


@dataclass
class Vring:
    num: int | None = None
    desc: int | None = None   # guest addresses, translated from front-end ones
    avail: int | None = None
    used: int | None = None
    user_addr: P.VringAddr | None = None
    base: int = 0
    kick: int | None = None
    call: int | None = None
    err: int | None = None
    enabled: bool = False
    started: bool = False

    def close_fds(self, close: Callable[[int], None]) -> None:
        for name in ("kick", "call", "err"):
            fd = getattr(self, name)
            if fd is not None:
                close(fd)
                setattr(self, name, None)


def is_eventfd(fd: int) -> bool:
    """True when ``fd`` is an eventfd, the only kind vhost-user passes for kick, call, err.

    Anything else is refused: epoll cannot watch a regular file, a pipe at
    end of file is readable forever, and a call fd is written to."""
    try:
        return os.readlink(f"/proc/self/fd/{fd}") == "anon_inode:[eventfd]"
    except OSError:
        return False


def _signal(fd: int | None) -> None:
    if fd is not None:
        try:
            os.eventfd_write(fd, 1)
        except OSError:
            pass  # the front-end closed its end; nothing to tell


class _Host:
    """The DeviceHost a session gives its device: interrupts become call eventfds."""

    def __init__(self, session: "Session | None"):
        self.session = session

    def queue_interrupt(self, queue: int) -> None:
        if self.session is None:
            return
        v = self.session.vrings.get(queue)
        if v is not None:
            _signal(v.call)

    def config_interrupt(self) -> None:
        # vhost-user has no config-change path without BACKEND_REQ; a device
        # that needs a reset says so on the error eventfds instead.
        pass


@dataclass
class SessionStats:
    messages: int = 0
    kicks: int = 0
    refused: int = 0


class Session:
    """One front-end connection and the device it drives."""

    def __init__(self, sock: socket.socket, device_factory: Callable[[], object],
                 log: Callable[[str], None], message_timeout: float = MESSAGE_TIMEOUT,
                 trace: bool = False, unwatch: Callable[[int], None] = lambda fd: None):
        self.trace = trace
        # Called with a kick fd before the session closes it: whoever polls
        # the fd must let go of it first, or the poller keeps watching the
        # front-end's eventfd (which stays open there) for ever.
        self.unwatch = unwatch
        sock.settimeout(message_timeout)
        self.channel = P.Channel(sock)
        self.device = device_factory()
        self.device.attach(_Host(self))
        self.log = log
        self.max_queues = self.device.num_queues()
        self.offered = self.device.device_features() | (1 << P.F_PROTOCOL_FEATURES)
        # QEMU refuses a back-end offering ACCESS_PLATFORM (serve --pool)
        # unless it can also open the back-end request channel; this one
        # never sends on it (its front-ends translate no addresses).
        self.offered_protocol = OFFERED_PROTOCOL | (
            P.bits(PF.BACKEND_REQ) if self.offered >> F_ACCESS_PLATFORM & 1 else 0)
        self.backend_req_fd: int | None = None
        self.features: int | None = None
        self.protocol = 0
        self.owner = False
        self.memory: RegionTable | None = None
        self.vrings: dict[int, Vring] = {}
        self.stats = SessionStats()
        self.reported_reset = False
        self.changed = True  # kick fds to watch may have changed

    # ------------------------------------------------------------ plumbing

    def close(self) -> None:
        try:
            self.device.write_status(0)
            # A reset keeps the device's memory map; drop it so the mappings
            # of a front-end that has gone are released now.
            self.device.set_memory(None)
            self.device.attach(_Host(None))
        except Exception:  # noqa: BLE001 - a broken device must not keep fds open
            pass
        for v in self.vrings.values():
            v.close_fds(self._close_fd)
        self.vrings.clear()
        if self.memory is not None:
            self.memory.close()
            self.memory = None
        if self.backend_req_fd is not None:
            os.close(self.backend_req_fd)
            self.backend_req_fd = None
        self.channel.close()

    def _close_fd(self, fd: int) -> None:
        self.unwatch(fd)
        try:
            os.close(fd)
        except OSError:
            pass

    def kick_fds(self) -> dict[int, int]:
        return {v.kick: i for i, v in self.vrings.items() if v.kick is not None}

    def _reply(self, request: int, payload: bytes) -> None:
        if self.trace:
            self.log(f"-> {P.request_name(request)} {payload.hex() or '-'}")
        self.channel.send(request, payload, reply=True)

    def _vring(self, index: int) -> Vring:
        if not 0 <= index < self.max_queues:
            raise Refused(f"vring index {index} out of range (device has {self.max_queues})")
        return self.vrings.setdefault(index, Vring())

    @staticmethod
    def _no_payload(msg: P.Message) -> None:
        if msg.payload:
            raise ProtocolError(f"{P.request_name(msg.request)}: payload is {len(msg.payload)} "
                                f"bytes, expected none")

    @staticmethod
    def _expect_fds(msg: P.Message, count: int) -> None:
        if len(msg.fds) != count:
            raise ProtocolError(f"{P.request_name(msg.request)}: {len(msg.fds)} file "
                                f"descriptors attached, expected {count}")

    # ------------------------------------------------------------ dispatch

    def handle(self, msg: P.Message) -> None:
        """Act on one message; raises ProtocolError to end the connection."""
        self.stats.messages += 1
        if self.trace:
            self.log(f"<- {P.request_name(msg.request)} flags {msg.header.flags:#x} "
                     f"{msg.payload.hex() or '-'}" + (f" +{len(msg.fds)} fds" if msg.fds else ""))
        if msg.header.is_reply:
            msg.close_fds()
            raise ProtocolError(f"{P.request_name(msg.request)}: reply flag set on a request")
        handler = HANDLERS.get(msg.request)
        try:
            if handler is None:
                msg.close_fds()
                raise Refused(f"unsupported request {P.request_name(msg.request)}")
            handler(self, msg)
        except Refused as exc:
            msg.close_fds()
            self.stats.refused += 1
            replying = msg.request in REPLYING
            if msg.header.need_reply and self.protocol & (1 << PF.REPLY_ACK) and not replying:
                self.log(f"refused {P.request_name(msg.request)}: {exc}")
                self._reply(msg.request, P.encode_u64(1))
                return
            raise ProtocolError(str(exc)) from None
        except BaseException:
            msg.close_fds()
            raise
        if (msg.header.need_reply and self.protocol & (1 << PF.REPLY_ACK)
                and msg.request not in REPLYING):
            self._reply(msg.request, P.encode_u64(0))

    # ------------------------------------------------------------ requests

    def get_features(self, msg: P.Message) -> None:
        self._no_payload(msg)
        self._expect_fds(msg, 0)
        self._reply(msg.request, P.encode_u64(self.offered))

    def set_features(self, msg: P.Message) -> None:
        self._expect_fds(msg, 0)
        value = P.decode_u64(msg.payload, "SET_FEATURES")
        if value & ~self.offered:
            raise Refused(f"features {value & ~self.offered:#x} were not offered")
        if any(v.started for v in self.vrings.values()):
            raise Refused("features changed while rings are running")
        self.features = value
        self._stop_device()

    def get_protocol_features(self, msg: P.Message) -> None:
        self._no_payload(msg)
        self._expect_fds(msg, 0)
        self._reply(msg.request, P.encode_u64(self.offered_protocol))

    def set_protocol_features(self, msg: P.Message) -> None:
        self._expect_fds(msg, 0)
        value = P.decode_u64(msg.payload, "SET_PROTOCOL_FEATURES")
        if value & ~self.offered_protocol:
            raise Refused(f"protocol features {value & ~self.offered_protocol:#x} were not "
                          f"offered")
        self.protocol = value

    def set_backend_req_fd(self, msg: P.Message) -> None:
        if not self.protocol & (1 << PF.BACKEND_REQ):
            raise Refused("SET_BACKEND_REQ_FD without the BACKEND_REQ protocol feature")
        self._no_payload(msg)
        self._expect_fds(msg, 1)
        if self.backend_req_fd is not None:
            os.close(self.backend_req_fd)
        self.backend_req_fd = msg.take_fds()[0]   # kept open, never written

    def set_owner(self, msg: P.Message) -> None:
        self._no_payload(msg)
        self._expect_fds(msg, 0)
        self.owner = True

    def reset_owner(self, msg: P.Message) -> None:
        self._no_payload(msg)
        self._expect_fds(msg, 0)
        self._stop_device()
        for v in self.vrings.values():
            v.close_fds(self._close_fd)
        self.vrings.clear()
        self.features = None
        self.changed = True

    def get_queue_num(self, msg: P.Message) -> None:
        self._no_payload(msg)
        self._expect_fds(msg, 0)
        self._reply(msg.request, P.encode_u64(self.max_queues))

    def get_config(self, msg: P.Message) -> None:
        self._expect_fds(msg, 0)
        space = P.ConfigSpace.decode(msg.payload)
        if space.offset + space.size > P.MAX_CONFIG_SIZE:
            raise Refused(f"config range {space.offset}+{space.size} beyond "
                          f"{P.MAX_CONFIG_SIZE} bytes")
        try:
            data = self.device.read_config(space.offset, space.size)
        except TransportError as exc:
            raise Refused(f"config read refused: {exc}") from None
        self._reply(msg.request, P.ConfigSpace(space.offset, space.size, space.flags,
                                                data).encode())

    def set_config(self, msg: P.Message) -> None:
        self._expect_fds(msg, 0)
        space = P.ConfigSpace.decode(msg.payload)
        try:
            self.device.write_config(space.offset, space.data)
        except (TransportError, ValueError) as exc:
            raise Refused(f"config write refused: {exc}") from None
        self._check_device()   # a write can put the device in its error state

    def set_mem_table(self, msg: P.Message) -> None:
        regions = P.decode_mem_table(msg.payload)
        self._expect_fds(msg, len(regions))
        bounce = self.device.bounce_region()
        # A device behind a restricted DMA pool (serve --pool) maps the pool
        # alone, whatever the front-end shares.
        pool_only = bounce is not None and getattr(self.device, "pool_only", False)
        window = (bounce.base, bounce.size) if pool_only else None
        table = RegionTable.from_message(regions, msg.fds, window)
        msg.close_fds()  # the mappings keep the memory; the fds are not needed
        if pool_only:
            self.log(f"memory table: {len(regions)} regions shared, mapped "
                     + (", ".join(f"{r.guest_addr:#x}+{r.size:#x}" for r in table.regions)
                        or "nothing") + " (the pool)")
        elif (bounce is not None and self.features is not None
                and self.features >> 44 & 1):
            for r in table.regions:
                if not bounce.contains(r.guest_addr, r.size):
                    table.close()
                    raise Refused(f"VIRTIO_F_SWIOTLB negotiated but region {r.guest_addr:#x}+"
                                  f"{r.size:#x} lies outside the bounce region "
                                  f"{bounce.base:#x}+{bounce.size:#x}")
        running = [i for i, v in self.vrings.items() if v.started]
        self._stop_device()
        self.device.set_memory(None)  # let go of the old mappings before unmapping them
        if self.memory is not None:
            self.memory.close()
        self.memory = table
        # Ring addresses were given in front-end addresses: translate again.
        for v in self.vrings.values():
            if v.user_addr is not None:
                self._translate(v, v.user_addr, strict=False)
        if running:
            self._maybe_start()

    def _translate(self, v: Vring, addr: P.VringAddr, strict: bool = True) -> None:
        layout = self._layout_sizes(v.num or 0)
        try:
            assert self.memory is not None
            v.desc = self.memory.user_to_guest(addr.desc, layout[0])
            v.avail = self.memory.user_to_guest(addr.avail, layout[1])
            v.used = self.memory.user_to_guest(addr.used, layout[2])
        except (ProtocolError, AssertionError) as exc:
            v.desc = v.avail = v.used = None
            if strict:
                raise Refused(f"vring {addr.index}: {exc}") from None

    def _packed(self) -> bool:
        return bool(self.features is not None and self.features >> 34 & 1)

    def _layout_sizes(self, num: int) -> tuple[int, int, int]:
        if self._packed():
            return 16 * num, 4, 4
        return 16 * num, 6 + 2 * num, 6 + 8 * num

    def set_vring_num(self, msg: P.Message) -> None:
        self._expect_fds(msg, 0)
        state = P.VringState.decode(msg.payload, "SET_VRING_NUM")
        v = self._vring(state.index)
        limit = self.device.queue_max_size(state.index)
        if not 1 <= state.num <= limit:
            raise Refused(f"vring {state.index}: size {state.num} not in 1..{limit}")
        if not self._packed() and state.num & (state.num - 1):
            raise Refused(f"vring {state.index}: split ring size {state.num} is not a power of 2")
        self._stop_ring(state.index)
        v.num = state.num

    def set_vring_addr(self, msg: P.Message) -> None:
        self._expect_fds(msg, 0)
        addr = P.VringAddr.decode(msg.payload)
        v = self._vring(addr.index)
        if addr.flags & ~1:
            raise Refused(f"vring {addr.index}: unknown address flags {addr.flags:#x}")
        if addr.flags & 1:
            raise Refused(f"vring {addr.index}: dirty logging is not supported")
        if self.memory is None:
            raise Refused(f"vring {addr.index}: addresses given before SET_MEM_TABLE")
        self._stop_ring(addr.index)
        v.user_addr = addr
        self._translate(v, addr)

    def set_vring_base(self, msg: P.Message) -> None:
        self._expect_fds(msg, 0)
        state = P.VringState.decode(msg.payload, "SET_VRING_BASE")
        v = self._vring(state.index)
        self._stop_ring(state.index)
        v.base = state.num

    def get_vring_base(self, msg: P.Message) -> None:
        self._expect_fds(msg, 0)
        state = P.VringState.decode(msg.payload, "GET_VRING_BASE")
        v = self._vring(state.index)
        # Getting the base stops the ring (and, for the device model, the
        # device: the front-end stops every ring before restarting any);
        # stopping records where each ring was.
        self._stop_device()
        base = v.base
        v.enabled = False if self.features and self.features >> P.F_PROTOCOL_FEATURES & 1 else v.enabled
        if v.kick is not None:
            self._close_fd(v.kick)
            v.kick = None
            self.changed = True
        self._reply(msg.request, P.VringState(state.index, base).encode())

    def _vring_file(self, msg: P.Message, name: str) -> None:
        index, has_fd = P.decode_vring_file(msg.payload)
        self._expect_fds(msg, 1 if has_fd else 0)
        v = self._vring(index)
        if name == "kick" and not has_fd:
            raise Refused(f"vring {index}: polling mode (no kick fd) is not supported")
        if has_fd and not is_eventfd(msg.fds[0]):
            raise Refused(f"vring {index}: the {name} fd is not an eventfd")
        fd = msg.take_fds()[0] if has_fd else None
        old = getattr(v, name)
        if old is not None:
            self._close_fd(old)
        setattr(v, name, fd)
        if name == "kick":
            self.changed = True
            self._maybe_start()
            # Buffers may already be waiting (the driver kicked before we
            # watched this fd): look once now.
            self._process(index)

    def set_vring_kick(self, msg: P.Message) -> None:
        self._vring_file(msg, "kick")

    def set_vring_call(self, msg: P.Message) -> None:
        self._vring_file(msg, "call")

    def set_vring_err(self, msg: P.Message) -> None:
        self._vring_file(msg, "err")

    def set_vring_enable(self, msg: P.Message) -> None:
        self._expect_fds(msg, 0)
        state = P.VringState.decode(msg.payload, "SET_VRING_ENABLE")
        if state.num not in (0, 1):
            raise Refused(f"vring {state.index}: enable value {state.num} is not 0 or 1")
        v = self._vring(state.index)
        v.enabled = bool(state.num)
        if v.enabled:
            self._maybe_start()
            self._process(state.index)
        else:
            self._stop_ring(state.index)

    # ------------------------------------------------------------ device

    def _ready(self, v: Vring) -> bool:
        proto = self.features is not None and self.features >> P.F_PROTOCOL_FEATURES & 1
        return (v.num is not None and v.desc is not None and v.kick is not None
                and (v.enabled or not proto))

    def _maybe_start(self) -> None:
        """Start the device once every configured ring is ready.

        Front-ends configure all rings, then enable them; waiting for the
        last one means the device model sees one clean start. vhost-user
        has no status register here, so the back-end runs the device's
        initialisation on the front-end's behalf (``VirtioDevice.start``).
        """
        if self.features is None or self.memory is None:
            return
        configured = {i: v for i, v in self.vrings.items() if v.num is not None and v.desc is not None}
        if not configured or not all(self._ready(v) for v in configured.values()):
            return
        if all(v.started for v in configured.values()):
            return
        self._stop_device()
        dev = self.device
        packed = self._packed()
        dev.set_memory(ring_memory(self.memory))
        for i, v in sorted(configured.items()):
            if packed and (v.base >> 16) and (v.base >> 16) != (v.base & 0xFFFF):
                self._stop_device()
                raise Refused(f"vring {i}: base {v.base:#x} has requests in flight; this "
                              f"device cannot adopt them")
            assert v.num is not None and v.desc is not None and v.avail is not None
            assert v.used is not None
            start = ring_start(v.base, packed)
            if (start & 0x7FFF if packed else 0) >= v.num:
                self._stop_device()
                raise Refused(f"vring {i}: base {v.base:#x} is beyond the ring size {v.num}")
            try:
                dev.set_queue(i, QueueConfig(v.num, v.desc, v.avail, v.used))
                dev.set_queue_base(i, start)
                dev.enable_queue(i)
            except TransportError as exc:
                self._stop_device()
                raise Refused(f"vring {i}: {exc}") from None
            v.started = True
        features = self.features & ~(1 << P.F_PROTOCOL_FEATURES)
        dev.start(features)
        if not dev.read_status() & FEATURES_OK:
            self._stop_device()
            raise Refused(f"device refused features {features:#x}")
        # A ring that cannot be opened (outside shared memory, ...) is the
        # device's error state, reported on the error eventfds, not a refusal.
        self.reported_reset = False
        self._check_device()

    def _stop_device(self) -> None:
        # Remember where each running ring stopped, so a restart (after a new
        # memory table, say) continues there instead of at the beginning.
        for i, v in self.vrings.items():
            if v.started:
                v.base = self._ring_base(i)
        if any(v.started for v in self.vrings.values()) or self.device.read_status():
            self.device.write_status(0)
        for v in self.vrings.values():
            v.started = False

    def _stop_ring(self, index: int) -> None:
        v = self.vrings.get(index)
        if v is not None and v.started:
            self._stop_device()

    def _ring_base(self, index: int) -> int:
        """GET_VRING_BASE value: split, the next available index; packed,
        index and wrap counter (bit 15) for the available side, repeated in
        bits 16-31 for the used side, which is the same here because the
        device completes every request before it reads the next kick."""
        state = self.device.queue_base(index) & 0xFFFF
        return state | state << 16 if self._packed() else state

    def _process(self, index: int) -> None:
        v = self.vrings.get(index)
        if v is None or not v.started:
            return
        self.device.notify(index)
        self._check_device()

    def _check_device(self) -> None:
        if self.device.read_status() & DEVICE_NEEDS_RESET and not self.reported_reset:
            self.reported_reset = True
            events = [e.detail for e in getattr(self.device, "events", []) if e.kind == "needs_reset"]
            self.log(f"device needs reset: {events[-1] if events else 'ring error'}")
            for v in self.vrings.values():
                _signal(v.err)

    def on_kick(self, index: int) -> None:
        v = self.vrings.get(index)
        if v is None or v.kick is None:
            return
        try:
            os.eventfd_read(v.kick)
        except BlockingIOError:
            pass
        except OSError:
            return
        self.stats.kicks += 1
        self._process(index)


REPLYING = P.REPLYING

HANDLERS: dict[int, Callable[[Session, P.Message], None]] = {
    Request.GET_FEATURES: Session.get_features,
    Request.SET_FEATURES: Session.set_features,
    Request.SET_OWNER: Session.set_owner,
    Request.RESET_OWNER: Session.reset_owner,
    Request.SET_MEM_TABLE: Session.set_mem_table,
    Request.SET_VRING_NUM: Session.set_vring_num,
    Request.SET_VRING_ADDR: Session.set_vring_addr,
    Request.SET_VRING_BASE: Session.set_vring_base,
    Request.GET_VRING_BASE: Session.get_vring_base,
    Request.SET_VRING_KICK: Session.set_vring_kick,
    Request.SET_VRING_CALL: Session.set_vring_call,
    Request.SET_VRING_ERR: Session.set_vring_err,
    Request.GET_PROTOCOL_FEATURES: Session.get_protocol_features,
    Request.SET_PROTOCOL_FEATURES: Session.set_protocol_features,
    Request.GET_QUEUE_NUM: Session.get_queue_num,
    Request.SET_VRING_ENABLE: Session.set_vring_enable,
    Request.GET_CONFIG: Session.get_config,
    Request.SET_CONFIG: Session.set_config,
    Request.SET_BACKEND_REQ_FD: Session.set_backend_req_fd,
}
