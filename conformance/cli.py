"""The ``conformance`` command: run vectors against a device and report."""
from __future__ import annotations

from collections.abc import Sequence

from device_ref.cli_base import run_cli

COMMANDS = ("run", "mutants", "driver_report")


def main(argv: Sequence[str] | None = None) -> int:
    return run_cli("conformance", "Run generated conformance vectors against a virtio device "
                   "and report verdicts with requirement coverage.", "0.1.0", "conformance",
                   COMMANDS, argv)


if __name__ == "__main__":
    raise SystemExit(main())
