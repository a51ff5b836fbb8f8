"""A vhost-user back-end server hosting a reference device.

One connection at a time (a vhost-user back-end serves one front-end); the
next connection is served once the current one ends, however it ends. Each
connection gets a fresh device from the factory, so a front-end that broke
the rules leaves nothing behind for the next one.

Every message is checked before it is acted on: header, payload size,
number of file descriptors, indices, addresses, region layout. A message
that breaks the protocol ends the connection with a one-line log entry; a
well-formed request the device cannot honour is refused with a non-zero
REPLY_ACK status when the front-end asked for one, and ends the connection
otherwise (the front-end would go on believing it succeeded).

Guest memory is reached only through the regions of the last SET_MEM_TABLE,
mapped into this process and handed to the device as a ring-core memory
map that bounds-checks every access.
"""
from __future__ import annotations

import os
import selectors
import socket
import stat
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from device_ref.vhost_user import protocol as P
from device_ref.vhost_user.protocol import ProtocolError
from device_ref.vhost_user.session import MESSAGE_TIMEOUT, Session

MAX_SOCKET_PATH = 107  # sun_path holds 108 bytes with the terminating NUL


@dataclass
class ServerStats:
    connections: int = 0
    errors: list[str] = field(default_factory=list)


def _stderr_log(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


class SocketInUse(OSError):
    """Another server is listening on the socket path."""


def _claim_path(path: str) -> None:
    """Remove a stale socket at ``path``; refuse one that a server still listens on."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(st.st_mode):
        raise OSError(f"{path} exists and is not a socket")
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    probe.settimeout(1.0)
    try:
        probe.connect(path)
    except (ConnectionRefusedError, FileNotFoundError):
        try:
            os.unlink(path)          # a stale socket from an earlier run
        except FileNotFoundError:
            pass
        return
    except OSError:
        pass                         # busy or timed out: someone is there
    finally:
        probe.close()
    raise SocketInUse(f"{path} is in use by another server")


class Server:
    """Listen on a Unix socket and serve front-ends one after another."""

    def __init__(self, path: str, device_factory: Callable[[], object],
                 log: Callable[[str], None] = _stderr_log, name: str = "vhost-user",
                 message_timeout: float = MESSAGE_TIMEOUT, trace: bool = False):
        self.path = path
        self.trace = trace
        self.message_timeout = message_timeout
        self.device_factory = device_factory
        self.name = name
        self._log = log
        self.stats = ServerStats()
        self._stop_r, self._stop_w = os.pipe()
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        # Bind under a temporary name and rename once listening, so the
        # socket path never exists without a listener behind it.
        if len(os.fsencode(path)) > MAX_SOCKET_PATH:
            raise OSError(f"socket path is {len(os.fsencode(path))} bytes; Unix sockets "
                          f"allow at most {MAX_SOCKET_PATH}")
        staging = os.path.join(os.path.dirname(path) or ".", f".vu-{os.getpid()}.tmp")
        try:
            _claim_path(path)
            self.listener.bind(staging)
            self.listener.listen(4)
            os.rename(staging, path)
            # What close() may remove: this socket, not one that replaced it.
            st = os.lstat(path)
            self._owned = (st.st_dev, st.st_ino)
        except OSError:
            self.listener.close()
            try:
                os.unlink(staging)
            except OSError:
                pass
            raise
        self.session: Session | None = None
        self._sel: selectors.BaseSelector | None = None
        self._watched: dict[int, int] = {}

    def log(self, line: str) -> None:
        self._log(f"{self.name}: {line}")

    def stop(self) -> None:
        """Ask serve_forever to return (safe from another thread or a signal)."""
        try:
            os.write(self._stop_w, b"x")
        except OSError:
            pass

    def close(self) -> None:
        if self.session is not None:
            self.session.close()
            self.session = None
        self.listener.close()
        for fd in (self._stop_r, self._stop_w):
            try:
                os.close(fd)
            except OSError:
                pass
        try:
            st = os.lstat(self.path)
            if (st.st_dev, st.st_ino) == self._owned:
                os.unlink(self.path)
        except OSError:
            pass

    def _end_session(self, reason: str | None) -> None:
        assert self.session is not None
        n = self.stats.connections
        if reason is not None:
            self.stats.errors.append(reason)
            self.log(f"connection {n}: error: {reason}")
        device = self.session.device
        counters = getattr(device, "counters", None)
        # The reference device checks the driver as it goes; what it saw
        # makes the device a judge of whoever drove it (e.g. Linux).
        violations = [e.detail for e in getattr(device, "events", []) if e.kind == "violation"]
        self.log(f"connection {n} closed: {self.session.stats.messages} messages, "
                 f"{self.session.stats.kicks} kicks, "
                 f"{getattr(counters, 'requests', 0)} requests, "
                 f"{len(violations)} driver violations")
        for detail in sorted(set(violations))[:5]:
            self.log(f"connection {n}: driver violation: {detail}")
        sel = self._sel
        if sel is not None:
            for fd in self._watched:
                sel.unregister(fd)
            self._watched = {}
            sel.unregister(self.session.channel.sock)
            sel.register(self.listener, selectors.EVENT_READ, ("accept", None))
        self.session.close()
        self.session = None

    def _unwatch(self, fd: int) -> None:
        """Stop polling ``fd`` (the session is about to close it)."""
        if self._sel is not None and self._watched.pop(fd, None) is not None:
            self._sel.unregister(fd)

    def _sync_watch(self) -> None:
        """Watch exactly the current session's kick eventfds."""
        assert self._sel is not None and self.session is not None
        for fd in list(self._watched):
            self._unwatch(fd)
        for fd, index in self.session.kick_fds().items():
            self._sel.register(fd, selectors.EVENT_READ, ("kick", index))
            self._watched[fd] = index
        self.session.changed = False

    def serve_forever(self) -> None:
        self._sel = sel = selectors.DefaultSelector()
        self._watched = {}
        sel.register(self._stop_r, selectors.EVENT_READ, ("stop", None))
        sel.register(self.listener, selectors.EVENT_READ, ("accept", None))
        try:
            while True:
                if self.session is not None and self.session.changed:
                    self._guard(self._sync_watch)
                for key, _ in sel.select():
                    kind, arg = key.data
                    if kind == "stop":
                        return
                    if kind == "accept":
                        self._accept()
                    elif kind == "conn" and self.session is not None:
                        session = self.session
                        self._guard(lambda: session.handle(session.channel.recv()))
                    elif kind == "kick" and self.session is not None:
                        self._guard(self.session.on_kick, arg)
                    if self.session is None or self.session.changed:
                        break  # the fd set changed: re-register before selecting on
        finally:
            self._sel = None
            sel.close()

    def _accept(self) -> None:
        conn, _ = self.listener.accept()
        self.stats.connections += 1
        try:
            self.session = Session(conn, self.device_factory, self.log, self.message_timeout,
                                   self.trace, unwatch=self._unwatch)
        except Exception as exc:  # noqa: BLE001 - a device that fails to open
            conn.close()
            self.log(f"connection {self.stats.connections}: cannot create device: {exc}")
            return
        assert self._sel is not None
        self._sel.unregister(self.listener)
        self._sel.register(conn, selectors.EVENT_READ, ("conn", None))

    def _guard(self, fn: Callable, *args) -> bool:
        """Run a session step; on any failure end the session, keep serving."""
        try:
            fn(*args)
            return True
        except P.PeerClosed:
            reason = None
        except ProtocolError as exc:
            reason = str(exc)
        except (socket.timeout, TimeoutError):
            reason = f"message not completed within {self.message_timeout:g} s"
        except (ConnectionResetError, BrokenPipeError):
            reason = "front-end reset the connection"
        except Exception as exc:  # noqa: BLE001 - a device bug must not kill the server
            reason = f"internal error: {type(exc).__name__}: {exc}"
        self._end_session(reason)
        return False

    def serve_in_thread(self) -> threading.Thread:
        t = threading.Thread(target=self.serve_forever, name=f"{self.name}-server", daemon=True)
        t.start()
        return t
