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


def main() -> None:
    storage = MemoryStorage(4 << 20)
    server = Server(sys.argv[1], lambda: DiesOnGetId(storage), name="crashing",
                    log=lambda line: None)
    server.serve_forever()


if __name__ == "__main__":
    main()
