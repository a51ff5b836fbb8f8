"""A back-end that dies in the middle of its first request (for error tests)."""
from __future__ import annotations

import os
import sys

from device_ref.devices.rng import RngDevice
from device_ref.vhost_user.backend import Server


class DyingRng(RngDevice):
    def handle(self, queue, io):
        os._exit(3)  # the process vanishes with the request in flight


if __name__ == "__main__":
    Server(sys.argv[1], DyingRng, log=lambda line: None).serve_forever()
