"""A vhost-user blk back-end that exits instead of refusing: on a descriptor
it cannot map, and when a driver leaves VIRTIO_F_VERSION_1 unaccepted (as
QEMU's vhost-user-gpu does on a bad descriptor).

Usage: python exiting_backend.py SOCKET
"""
from __future__ import annotations

import os
import sys

from device_ref.devices.blk import BlkDevice, MemoryStorage
from device_ref.vhost_user.backend import Server
from device_ref.virtio_constants import F_VERSION_1


class ExitsOnTrouble(BlkDevice):
    def set_driver_features(self, features: int) -> None:
        if not features >> F_VERSION_1 & 1:
            os._exit(4)
        super().set_driver_features(features)

    def needs_reset(self, reason: str) -> None:
        os._exit(5)


def main() -> None:
    storage = MemoryStorage(4 << 20)
    server = Server(sys.argv[1], lambda: ExitsOnTrouble(storage), name="exiting",
                    log=lambda line: None)
    server.serve_forever()


if __name__ == "__main__":
    main()
