"""A vhost-user blk back-end that exits instead of refusing: on a descriptor
it cannot map, and when a driver leaves VIRTIO_F_VERSION_1 unaccepted (as
QEMU's vhost-user-gpu does on a bad descriptor).

Usage: python exiting_backend.py SOCKET
"""
from __future__ import annotations

import os

from crashing_backend import serve   # run as a script: this directory is on sys.path

from device_ref.devices.blk import BlkDevice
from device_ref.virtio_constants import F_VERSION_1


class ExitsOnTrouble(BlkDevice):
    def set_driver_features(self, features: int) -> None:
        if not features >> F_VERSION_1 & 1:
            os._exit(4)
        super().set_driver_features(features)

    def needs_reset(self, reason: str) -> None:
        os._exit(5)


if __name__ == "__main__":
    serve(ExitsOnTrouble, "exiting")
