"""The ``specc`` command: check, dump and compile vspec modules."""
from __future__ import annotations

from collections.abc import Sequence

from specc import __version__
from specc.cli_base import run_cli

COMMANDS = ("check", "dump", "ids", "build", "patch", "rst", "docs", "vectors", "audit",
            "device_types")


def main(argv: Sequence[str] | None = None) -> int:
    return run_cli("specc", "Compile virtio spec changes written in the vspec DSL into a "
                   "LaTeX patch series, HTML docs and conformance vectors.",
                   __version__, "specc", COMMANDS, argv)


if __name__ == "__main__":
    raise SystemExit(main())
