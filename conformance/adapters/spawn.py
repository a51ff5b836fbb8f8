"""``spawn:COMMAND``: start a vhost-user back-end for each test group.

``{socket}`` in COMMAND becomes a fresh socket path. The process is started
when a group begins, restarted after a WEDGED verdict (so one crash does
not poison the rest of the run), and stopped at the end. Its output goes to
a log the report keeps.
"""
from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import tempfile
import time

from conformance.adapters.base import Adapter, AdapterError, AdapterOptions, Session
from conformance.adapters.vhost_user import VhostUserAdapter

LOG_TAIL = 4000
START_MARK = "--- start"        # the adapter's line before each start of the back-end


class SpawnAdapter(Adapter):
    name = "spawn"

    def __init__(self, command: str, opts: AdapterOptions) -> None:
        if "{socket}" not in command:
            raise AdapterError("spawn command needs {socket} where the socket path goes")
        try:
            self.argv = shlex.split(command)
        except ValueError as exc:
            raise AdapterError(f"cannot split spawn command: {exc}") from None
        if not self.argv:
            raise AdapterError("spawn command is empty")
        if shutil.which(self.argv[0]) is None and not os.access(self.argv[0], os.X_OK):
            raise AdapterError(f"spawn: {self.argv[0]}: command not found")
        self.command = command
        self.opts = opts
        self.dir = tempfile.mkdtemp(prefix="conf-", dir="/tmp")   # short: sun_path is 108 bytes
        self.socket = os.path.join(self.dir, "dev.sock")
        self.log_path = os.path.join(self.dir, "device.log")
        self.proc: subprocess.Popen | None = None
        self.inner = VhostUserAdapter(self.socket, opts)
        self.device_types = self.inner.device_types
        self.starts = 0
        self._pending_start = True
        self._keep = False

    def describe(self) -> str:
        return f"spawn:{self.command} ({self.inner.device_type})"

    # -------------------------------------------------------------- process
    def _start(self) -> None:
        self._stop()
        if os.path.exists(self.socket):
            os.unlink(self.socket)
        argv = [a.replace("{socket}", self.socket) for a in self.argv]
        log = open(self.log_path, "ab")
        log.write(f"{START_MARK} {self.starts + 1}: {' '.join(argv)}\n".encode())
        log.flush()
        try:
            self.proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL, start_new_session=True)
        except OSError as exc:
            raise AdapterError(f"spawn: cannot start {argv[0]}: {exc.strerror}") from None
        finally:
            log.close()
        self.starts += 1
        deadline = time.monotonic() + self.opts.start_timeout
        while not os.path.exists(self.socket):
            if self.proc.poll() is not None:
                raise AdapterError(f"spawned back-end exited with status {self.proc.returncode} "
                                   f"before listening: {self._one_line(300)}")
            if time.monotonic() > deadline:
                raise AdapterError(f"spawned back-end did not create {self.socket} within "
                                   f"{self.opts.start_timeout:g} s")
            time.sleep(0.01)

    def _stop(self) -> None:
        p, self.proc = self.proc, None
        if p is None or p.poll() is not None:
            return
        p.terminate()
        try:
            p.wait(5)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()

    def _one_line(self, n: int) -> str:
        """The end of the log on one line (for an error message)."""
        lines = [x.strip() for x in self._tail(n).splitlines() if x.strip()]
        return " | ".join(x for x in lines if not x.startswith(START_MARK)) or "(no output)"

    def log_tail(self, lines: int) -> list[str]:
        """The back-end's own last lines (not the adapter's start markers)."""
        own = [x for x in self._tail().splitlines() if x.strip() and not x.startswith(START_MARK)]
        return own[-lines:]

    def _tail(self, n: int = LOG_TAIL) -> str:
        try:
            with open(self.log_path, "rb") as f:
                data = f.read()
        except OSError:
            return ""
        return data[-n:].decode(errors="replace")

    # -------------------------------------------------------------- Adapter
    def begin_group(self, key: str) -> None:
        if self._keep:
            self._keep = False      # the process preflight started serves the first group
            return
        self._pending_start = True

    def preflight(self, device_type: str | None = None) -> None:
        super().preflight(device_type)
        self._keep = True

    def open(self, device_type: str | None) -> Session:
        restarted = False
        deadline = None
        while True:
            if self._pending_start or self.proc is None or \
                    self.proc.poll() is not None:
                self._pending_start = False
                self._start()
                deadline = time.monotonic() + self.opts.start_timeout
            try:
                session = self.inner.open(device_type)
            except AdapterError as exc:
                alive = self.proc is not None and self.proc.poll() is None
                # The socket file can appear before the back-end listens on it.
                if alive and "refused" in str(exc) and deadline is not None \
                        and time.monotonic() < deadline:
                    time.sleep(0.02)
                    continue
                # A back-end that serves one connection exits when it ends:
                # give it a moment to go, then start a fresh one once.
                if not restarted and self._exits_soon():
                    restarted = True
                    continue
                died = self.proc is not None and self.proc.poll() is not None
                raise AdapterError(f"{exc}" + (f" (back-end exited with status "
                                               f"{self.proc.returncode})" if died else "")) \
                    from None
            proc, connected = self.proc, session.alive
            session.alive = lambda: proc is not None and proc.poll() is None and \
                (connected is None or connected())
            return session

    def _exits_soon(self, wait: float = 1.0) -> bool:
        if self.proc is None:
            return True
        try:
            self.proc.wait(wait)
        except subprocess.TimeoutExpired:
            return False
        return True

    def after_wedged(self) -> None:
        self._pending_start = True   # a fresh process for the next test

    def end_group(self) -> None:
        self._stop()

    def close(self) -> None:
        self._stop()

    def logs(self) -> str:
        return self._tail()

    def cleanup(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)
