"""The ``device-ref`` command: reference virtio devices and driver."""
from __future__ import annotations

from collections.abc import Sequence

from device_ref.cli_base import run_cli

COMMANDS = ("selftest", "serve", "probe")


def main(argv: Sequence[str] | None = None) -> int:
    return run_cli("device-ref", "Reference virtio devices (blk, rng, net, console) and driver, in process "
                   "or served over vhost-user.", "0.1.0", "device_ref", COMMANDS, argv)


if __name__ == "__main__":
    raise SystemExit(main())
