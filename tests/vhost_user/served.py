"""Our vhost-user back-end served in a thread of the test process."""
from __future__ import annotations

from device_ref.vhost_user.backend import Server


class Served:
    """An in-process server in a thread, stopped by the test."""

    def __init__(self, path: str, factory):
        self.logs: list[str] = []
        self.server = Server(path, factory, log=self.logs.append)
        self.thread = self.server.serve_in_thread()

    def close(self) -> None:
        self.server.stop()
        self.thread.join(5)
        self.server.close()
