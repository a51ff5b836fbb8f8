"""specc rst: write one reStructuredText page per vspec module."""
from __future__ import annotations

import argparse

from specc.cli_base import CliError
from specc.emit.inputs import add_module_arguments, checked_modules, output_dir
from specc.emit.rst import RstError
from specc.emit.writers import EmitError, write_rst

HELP = "write one reStructuredText page per module"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_module_arguments(parser)


def run(args: argparse.Namespace) -> int:
    modules, _ = checked_modules(args.modules)
    out = output_dir(args.output)
    try:
        written = write_rst(modules, out)
    except (RstError, EmitError) as exc:
        raise CliError(str(exc)) from None
    print(f"wrote {len(written)} RST page(s) to {out}")
    return 0
