"""`specc device-types`: the device-type data the runtime ships, from a spec tree."""
from __future__ import annotations

import argparse
import sys

from specc.cli_base import CliError
from specc.upstream.device_types import DeviceTypesError, device_types, load_queue_data, render
from specc.upstream.tree import TreeError, load_tree

HELP = ("write device-type data (ids, feature bits, queues) for the runtime, "
        "from a spec tree and the hand-written queue data")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--spec-tree", required=True, metavar="PATH",
                        help="a virtio-spec checkout (the directory holding virtio.tex)")
    parser.add_argument("-o", "--output", metavar="FILE",
                        help="write here (default: standard output), e.g. "
                             "device_ref/data/device_types.json")
    parser.add_argument("--queues", metavar="FILE",
                        help="queue data (default: the packaged specc/data/device_queues.toml)")


def run(args: argparse.Namespace) -> int:
    try:
        tree = load_tree(args.spec_tree)
        doc = device_types(tree, load_queue_data(args.queues))
    except (TreeError, DeviceTypesError) as exc:
        raise CliError(str(exc)) from None
    text = render(doc)
    if not args.output:
        sys.stdout.write(text)
        return 0
    try:
        with open(args.output, "w", encoding="utf-8") as fh:
            fh.write(text)
    except OSError as exc:
        raise CliError(f"{args.output}: cannot write: {exc.strerror or exc}") from None
    print(f"{args.output}: {len(doc['types'])} device types", file=sys.stderr)
    return 0
