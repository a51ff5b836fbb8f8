"""Start a vhost-user back-end command and wait until its socket answers.

For adapters, tests and benchmarks that drive a back-end they start
themselves (``device-ref serve``, ``qemu-storage-daemon``, ``virtiofsd``).
``{socket}`` in the command is replaced by the socket path.
"""
from __future__ import annotations

import os
import stat
import subprocess
import time
from collections.abc import Sequence

from device_ref.transport import TransportError


class SpawnError(TransportError):
    """The back-end command did not come up; the message is one line."""


class SpawnedBackend:
    """A running back-end process; use as a context manager to stop it."""

    def __init__(self, command: Sequence[str], socket_path: str, timeout: float = 10.0,
                 env: dict[str, str] | None = None):
        self.socket = socket_path
        argv = [a.replace("{socket}", socket_path) for a in command]
        if not argv:
            raise SpawnError("empty back-end command")
        try:
            self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                         stderr=subprocess.STDOUT, env=env)
        except OSError as exc:
            raise SpawnError(f"cannot run {argv[0]}: {exc.strerror or exc}") from None
        try:
            self._wait(timeout, argv[0])
        except BaseException:
            self.stop()
            raise

    def _wait(self, timeout: float, name: str) -> None:
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                out = self.proc.stdout.read().decode(errors="replace") if self.proc.stdout else ""
                last = out.strip().splitlines()[-1] if out.strip() else "no output"
                raise SpawnError(f"{name} exited with status {self.proc.returncode} before "
                                 f"listening on {self.socket}: {last}")
            # Only look for the socket file: a probe connection would be a
            # session of its own, and one-shot back-ends (virtiofsd) exit
            # when their first front-end leaves.
            if _is_socket(self.socket):
                return
            if time.monotonic() > deadline:
                raise SpawnError(f"{name} did not listen on {self.socket} within {timeout:g} s")
            time.sleep(0.02)

    def stop(self) -> int:
        """Terminate (then kill) the process; returns its exit status."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc.stdout:
            self.proc.stdout.close()
        return self.proc.returncode

    def __enter__(self) -> "SpawnedBackend":
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _is_socket(path: str) -> bool:
    try:
        return stat.S_ISSOCK(os.stat(path).st_mode)
    except OSError:
        return False
