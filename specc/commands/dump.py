"""specc dump: print the parsed model (JSON) for other tools."""
from __future__ import annotations

import argparse
import json
import sys

from specc.cli_base import CliError
from specc.pipeline import check_files
from specc.serialize import modules_to_data

HELP = "print the checked model of vspec modules as JSON"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("files", nargs="+", metavar="FILE")
    parser.add_argument("--json", action="store_true", default=True,
                        help="JSON output (the only format; accepted for clarity)")
    parser.add_argument("--no-check", action="store_true",
                        help="dump whatever parsed, even if semantic checks fail")


def run(args: argparse.Namespace) -> int:
    result = check_files(args.files, use_registry=False)
    if result.fatal:
        raise CliError(result.fatal)
    errors = [d for d in result.diagnostics if d.is_error]
    parse_failed = len(result.modules) < len(args.files)
    if (errors and not args.no_check) or parse_failed:
        print(result.render(), file=sys.stderr)
        return 2
    json.dump(modules_to_data(result.modules), sys.stdout, indent=1, sort_keys=True)
    sys.stdout.write("\n")
    return 0
