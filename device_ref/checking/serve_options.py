"""The options ``device-ref serve`` takes for driver checking, and how they
turn the plain device factory into a recording one."""
from __future__ import annotations

import argparse
import os

from device_ref.checking.recorder import Recorder
from device_ref.checking.requirements import VectorsError
from device_ref.cli_base import CliError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--check-driver", action="store_true",
                        help="run a checking device that records every driver violation "
                             "it sees (docs/driver-check.md); needs --report")
    parser.add_argument("--report", metavar="FILE",
                        help="--check-driver: JSON report, rewritten at each device reset "
                             "(stop, disconnect) and at exit; read it with "
                             "'conformance driver-report FILE'")
    parser.add_argument("--vectors", metavar="DIR",
                        help="--check-driver: vector files to name each violation's "
                             "requirement ids in the report (specc vectors spec/*.vspec -o DIR)")


def wrap(args: argparse.Namespace, factory):
    """``factory`` as it is, or a ``Recorder`` around it with --check-driver."""
    if not args.check_driver:
        if args.report or args.vectors:
            raise CliError("--report and --vectors need --check-driver")
        return factory
    if not args.report:
        raise CliError("--check-driver needs --report FILE")
    parent = os.path.dirname(os.path.abspath(args.report))
    if not os.path.isdir(parent):
        raise CliError(f"--report {args.report}: directory {parent} does not exist")
    try:
        return Recorder(factory, args.type, args.report, args.vectors)
    except VectorsError as exc:
        raise CliError(f"--vectors: {exc}") from None
    except OSError as exc:
        raise CliError(f"--report {args.report}: {exc.strerror}") from None


def finish(factory) -> None:
    """At exit: the last word in the report."""
    if isinstance(factory, Recorder):
        factory.write()
