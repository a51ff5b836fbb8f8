"""``device-ref probe``: check any vhost-user back-end from the front-end side."""
from __future__ import annotations

import argparse

from device_ref.vhost_user import probe as _probe

HELP = ("check a vhost-user back-end from the front-end side: negotiate, bring it up "
        "with the reference driver, move data")

add_arguments = _probe.add_arguments


def run(args: argparse.Namespace) -> int:
    return _probe.run(args, prog="device-ref probe")
