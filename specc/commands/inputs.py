"""What the emitter commands share: their arguments, and loading modules and
output directories with problems turned into CLI errors (exit status 2)."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from specc.cli_base import CliError
from specc.emit import inputs
from specc.model import Module


def add_module_arguments(parser: argparse.ArgumentParser) -> None:
    """The arguments every emitter command takes: the modules and ``-o DIR``."""
    parser.add_argument("modules", nargs="+", metavar="MODULE",
                        help=".vspec files, or directories of them")
    parser.add_argument("-o", "--output", required=True, metavar="DIR", help="output directory")


def load_checked(paths: list[str]) -> inputs.CheckedModules:
    """Checked modules; diagnostics go to stderr; broken sources are a CliError."""
    try:
        checked = inputs.checked_modules(paths)
    except inputs.InputError as exc:
        if exc.diagnostics:
            print(exc.diagnostics, file=sys.stderr)
        raise CliError(str(exc)) from None
    if checked.diagnostics:
        print(checked.diagnostics, file=sys.stderr)
    return checked


def load_modules(paths: list[str]) -> list[Module]:
    return load_checked(paths).modules


def output_dir(path: str) -> Path:
    try:
        return inputs.output_dir(path)
    except inputs.InputError as exc:
        raise CliError(str(exc)) from None
