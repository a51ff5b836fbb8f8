"""A vhost-user blk back-end that dies (exit status 3) when asked for its
id: for showing that one crashing device does not poison a spawn: run.

Usage: python crashing_backend.py SOCKET
"""
from __future__ import annotations

import os
import sys

from device_ref.devices.blk import T_GET_ID, BlkDevice, MemoryStorage
from device_ref.vhost_user.backend import Server


class DiesOnGetId(BlkDevice):
    def handle(self, queue, io):
        if int.from_bytes(io.read(0, 4), "little") == T_GET_ID:
            os._exit(3)
        return super().handle(queue, io)


def serve(device_cls: type[BlkDevice], name: str) -> None:
    """Serve ``device_cls`` over a 4 MiB disk on the socket named by argv[1]."""
    storage = MemoryStorage(4 << 20)
    server = Server(sys.argv[1], lambda: device_cls(storage), name=name, log=lambda line: None)
    server.serve_forever()


if __name__ == "__main__":
    serve(DiesOnGetId, "crashing")
