"""The front-end's side of one vhost-user socket: requests, replies, acks.

This is the control path only (what a VMM says to a back-end). The data path
(rings in shared memory, kick and call eventfds) is set up through it by
``frontend.py``. Every failure becomes a ``FrontendError`` with one line
that names the socket and what went wrong.
"""
from __future__ import annotations

import errno
import os
import select
import socket
import time
from dataclasses import dataclass

from device_ref.transport import TransportError
from device_ref.vhost_user import protocol as P
from device_ref.vhost_user.protocol import Request


class FrontendError(TransportError):
    """A vhost-user back-end could not be used; the message is one line."""


@dataclass
class Reply:
    payload: bytes
    fds: list[int]


def _connect(path: str, timeout: float) -> socket.socket:
    """A connected socket. A busy back-end (its listen backlog full) makes
    connect fail at once with EAGAIN; that is a wait, not a refusal: try
    again, backing off, until ``timeout``."""
    deadline = time.monotonic() + timeout
    pause = 0.005
    while True:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(timeout)
        try:
            sock.connect(path)
            return sock
        except BlockingIOError:
            sock.close()
            if time.monotonic() + pause > deadline:
                raise socket.timeout() from None
            time.sleep(pause)
            pause = min(pause * 2, 0.1)
        except BaseException:
            sock.close()
            raise


class Connection:
    """A connected front-end socket, speaking request by request."""

    def __init__(self, path: str, timeout: float = 5.0):
        self.path = path
        self.timeout = timeout
        self.reply_ack = False  # set once REPLY_ACK is negotiated
        try:
            sock = _connect(path, timeout)
        except FileNotFoundError:
            raise FrontendError(f"{path}: no such socket") from None
        except ConnectionRefusedError:
            raise FrontendError(f"{path}: connection refused (no back-end listening)") from None
        except (socket.timeout, TimeoutError):
            raise FrontendError(f"{path}: connection timed out after {timeout:g} s") from None
        except OSError as exc:
            raise FrontendError(f"{path}: cannot connect: {exc.strerror or exc}") from None
        self.channel = P.Channel(sock)

    def fileno(self) -> int:
        return self.channel.sock.fileno()

    def close(self) -> None:
        self.channel.close()

    def _fail(self, what: str) -> FrontendError:
        return FrontendError(f"{self.path}: {what}")

    def send(self, request: Request, payload: bytes = b"", fds: tuple[int, ...] | list[int] = (),
             *, need_reply: bool = False) -> None:
        try:
            self.channel.send(request, payload, fds, need_reply=need_reply)
        except (BrokenPipeError, ConnectionResetError):
            raise self._fail(f"back-end closed the connection (sending {request.name})") from None
        except (socket.timeout, TimeoutError):
            raise self._fail(f"back-end stopped reading (sending {request.name})") from None
        except OSError as exc:
            raise self._fail(f"sending {request.name}: {exc.strerror or exc}") from None

    def receive(self, request: Request) -> P.Message:
        try:
            msg = self.channel.recv()
        except P.PeerClosed:
            raise self._fail(f"back-end closed the connection (waiting for the reply to "
                             f"{request.name})") from None
        except (socket.timeout, TimeoutError):
            raise self._fail(f"no reply to {request.name} within {self.timeout:g} s "
                             f"(back-end not answering, or busy with another front-end)") from None
        except ConnectionResetError:
            raise self._fail(f"back-end reset the connection (waiting for the reply to "
                             f"{request.name})") from None
        except P.ProtocolError as exc:
            raise self._fail(f"bad reply to {request.name}: {exc}") from None
        if msg.request != request or not msg.header.is_reply:
            msg.close_fds()
            raise self._fail(f"expected a reply to {request.name}, got "
                             f"{P.request_name(msg.request)} (flags {msg.header.flags:#x})")
        return msg

    def request(self, request: Request, payload: bytes = b"",
                fds: tuple[int, ...] | list[int] = (), *, ack: bool | None = None) -> Reply | None:
        """Send a request; return its reply, or None for one without a reply.

        Requests without a reply of their own ask for an ack when REPLY_ACK
        is negotiated (or ``ack`` says so), so a refusal surfaces here.
        """
        replying = request in P.REPLYING
        want_ack = (self.reply_ack if ack is None else ack) and not replying
        self.send(request, payload, fds, need_reply=want_ack)
        if replying:
            msg = self.receive(request)
            return Reply(msg.payload, msg.take_fds())
        if want_ack:
            msg = self.receive(request)
            msg.close_fds()
            try:
                status = P.decode_u64(msg.payload, f"{request.name} ack")
            except P.ProtocolError as exc:
                raise self._fail(str(exc)) from None
            if status != 0:
                raise self._fail(f"back-end refused {request.name} (status {status})")
        return None

    def get_u64(self, request: Request) -> int:
        reply = self.request(request)
        assert reply is not None
        for fd in reply.fds:
            os.close(fd)
        try:
            return P.decode_u64(reply.payload, f"{request.name} reply")
        except P.ProtocolError as exc:
            raise self._fail(str(exc)) from None

    def peer_alive(self) -> bool:
        """False once the back-end has hung up (checked without blocking)."""
        try:
            ready, _, _ = select.select([self.channel.sock], [], [], 0)
        except (OSError, ValueError):
            return False
        if not ready:
            return True
        try:
            data = self.channel.sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT)
        except BlockingIOError:
            return True
        except OSError as exc:
            return exc.errno not in (errno.ECONNRESET, errno.EPIPE, errno.EBADF)
        return bool(data)
