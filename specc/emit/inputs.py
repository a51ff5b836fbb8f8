"""The input edge of the emitter commands: find .vspec files, load and check
them, and turn problems into one-line CLI errors."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from specc.cli_base import CliError
from specc.model import Module
from specc.pipeline import check_files


def add_module_arguments(parser: argparse.ArgumentParser) -> None:
    """The arguments every emitter command takes: the modules and ``-o DIR``."""
    parser.add_argument("modules", nargs="+", metavar="MODULE",
                        help=".vspec files, or directories of them")
    parser.add_argument("-o", "--output", required=True, metavar="DIR", help="output directory")


def vspec_files(paths: list[str]) -> list[str]:
    """Expand directories to their *.vspec files (sorted); keep files as given."""
    out: list[str] = []
    for p in paths:
        path = Path(p)
        if path.is_dir():
            found = sorted(str(f) for f in path.glob("*.vspec"))
            if not found:
                raise CliError(f"{p}: no .vspec files in this directory")
            out += found
        elif path.is_file():
            out.append(p)
        else:
            raise CliError(f"{p}: no such file or directory")
    return out


def checked_modules(paths: list[str]) -> tuple[list[Module], dict[str, str]]:
    """Load and check modules; print diagnostics; refuse to emit from broken sources."""
    files = vspec_files(paths)
    result = check_files(files)
    if result.fatal:
        raise CliError(result.fatal)
    text = result.render()
    if text:
        print(text, file=sys.stderr)
    errors = sum(1 for d in result.diagnostics if d.is_error)
    if errors:
        raise CliError(f"{errors} error{'s' if errors != 1 else ''} in the sources; nothing written")
    return result.modules, result.sources


def output_dir(path: str) -> Path:
    out = Path(path)
    if out.exists() and not out.is_dir():
        raise CliError(f"{path}: exists and is not a directory")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise CliError(f"{path}: cannot create output directory: {exc.strerror}") from None
    return out
