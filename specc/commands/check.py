"""specc check: parse and check vspec modules, report like a compiler."""
from __future__ import annotations

import argparse
import sys

from specc.cli_base import CliError
from specc.pipeline import check_files, summary_line
from specc.commands.tree_arg import add_tree_argument, optional_tree

HELP = "check vspec modules: syntax, ids, feature bits, references, layouts, placement"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("files", nargs="+", metavar="FILE", help=".vspec sources to check together")
    parser.add_argument("--strict", action="store_true", help="treat warnings as errors (exit 2)")
    parser.add_argument("--registry", metavar="PATH",
                        help="id registry to compare with (default: ids.json beside the first file, "
                             "if it exists)")
    parser.add_argument("--no-registry", action="store_true", help="skip the id registry comparison")
    add_tree_argument(parser, "also check against this virtio-spec checkout: nothing it already "
                              "defines may be defined again, and every amendment must apply")
    parser.add_argument("-q", "--quiet", action="store_true", help="print diagnostics only, no summary")


def run(args: argparse.Namespace) -> int:
    tree = optional_tree(args.spec_tree)
    result = check_files(args.files, registry=args.registry, use_registry=not args.no_registry,
                         tree=tree)
    if result.fatal:
        raise CliError(result.fatal)
    text = result.render()
    if text:
        print(text, file=sys.stderr, flush=True)
    if not args.quiet:
        print(summary_line(result))
    errors = sum(1 for d in result.diagnostics if d.is_error)
    warnings = len(result.diagnostics) - errors
    if errors or (args.strict and warnings):
        return 2
    return 0
