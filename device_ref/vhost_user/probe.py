"""Check a vhost-user back-end from the front-end side, with the reference driver.

    python -m device_ref.vhost_user.probe --socket PATH --type blk|rng [options]

Connects, negotiates, brings the device up with the reference driver and
moves data: blk reads capacity, the device id and sector 0 (and, with
``--write-test SECTOR``, writes a pattern there and reads it back); rng reads
entropy. Prints a short summary. Any failure (nothing listening, no answer,
a missing feature, a back-end that dies mid-request) is one line on stderr
and exit status 1; bad arguments exit 2.
"""
from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from device_ref.sizes import parse_region
from device_ref.transport import BounceRegion, TransportError
from device_ref.vhost_user.connection import FrontendError
from device_ref.vhost_user.frontend import VhostUserTransport, feature_name
from device_ref.vhost_user.protocol import ProtocolFeature as PF
from device_ref.virtio_constants import F_SWIOTLB
from device_ref.driver.blk import BlkDriver
from device_ref.driver.core import ALL, DriverOptions
from device_ref.driver.errors import DriverError
from device_ref.driver.rng import RngDriver

PROG = "device-ref-probe"
ID = {"blk": 2, "rng": 4}


class ProbeError(Exception):
    """A failure to report in one line."""


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=PROG, description=__doc__.split("\n\n")[0])
    add_arguments(p)
    return p


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The probe's options (shared by ``device-ref probe``)."""
    p.add_argument("--socket", required=True, metavar="PATH")
    p.add_argument("--type", required=True, choices=sorted(ID))
    p.add_argument("--timeout", type=float, default=5.0, metavar="SECONDS",
                   help="how long to wait for any reply or completion (default 5)")
    p.add_argument("--require", type=int, action="append", default=[], metavar="BIT",
                   help="fail unless the back-end offers this virtio feature bit (repeatable)")
    p.add_argument("--swiotlb", action="store_true",
                   help="share only a bounce region and require VIRTIO_F_SWIOTLB")
    p.add_argument("--bounce", default="0x100000000:8M", metavar="BASE:SIZE")
    p.add_argument("--no-packed", action="store_true", help="do not accept RING_PACKED")
    p.add_argument("--write-test", type=int, metavar="SECTOR",
                   help="blk: write a pattern at SECTOR and read it back (destroys data)")


def probe(args: argparse.Namespace) -> list[str]:

    bounce = None
    if args.swiotlb:
        try:
            base, size = parse_region(args.bounce)
        except ValueError:
            raise ProbeError(f"--bounce {args.bounce!r}: expected BASE:SIZE") from None
        bounce = BounceRegion(base, size)
    required = [*args.require] + ([F_SWIOTLB] if args.swiotlb else [])
    protocol = 1 << PF.CONFIG if args.type == "blk" else 0
    t = VhostUserTransport(args.socket, ID[args.type], bounce=bounce, timeout=args.timeout,
                           required_protocol=protocol)
    try:
        t.frontend.require_features(sum(1 << b for b in required))
        mask = ALL & ~((1 << 34) if args.no_packed else 0)
        opts = DriverOptions(features=mask, timeout=args.timeout)
        drv = (BlkDriver if args.type == "blk" else RngDriver)(t, opts)
        try:
            drv.init()
        except DriverError as exc:
            cause = exc.__cause__
            raise ProbeError(str(cause) if isinstance(cause, FrontendError) else str(exc)) from None
        if args.swiotlb and not drv.swiotlb:
            raise ProbeError("VIRTIO_F_SWIOTLB was not negotiated")
        names = [feature_name(b) for b in range(64) if drv.negotiated >> b & 1 and b >= 28]
        lines = [f"{args.socket}: {args.type} device, features {drv.negotiated:#x} "
                 f"({', '.join(names)})"]
        try:
            if args.type == "blk":
                lines.append(f"capacity {drv.capacity} sectors, id "
                             f"{drv.get_id().rstrip(bytes(1)).decode(errors='replace')!r}")
                drv.read(0, 512)
                if args.write_test is not None:
                    pattern = os.urandom(4096)
                    drv.write(args.write_test, pattern)
                    if drv.read(args.write_test, 4096) != pattern:
                        raise ProbeError(f"data read back at sector {args.write_test} differs")
                    lines.append(f"wrote and read back 4096 bytes at sector {args.write_test}")
            else:
                lines.append(f"read {len(drv.read(64))} bytes of entropy")
        except DriverError as exc:
            raise ProbeError(str(exc)) from None
        drv.shutdown()
        return lines
    finally:
        t.close()


def run(args: argparse.Namespace, prog: str = PROG) -> int:
    """Probe, print the summary; a failure is one line on stderr and exit 1."""
    try:
        for line in probe(args):
            print(line)
    except (ProbeError, TransportError) as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    return run(build_parser().parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())
