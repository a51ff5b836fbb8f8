"""A small argparse front door for specc (the runtime keeps its own copy in
device_ref/cli_base.py: the compiler and the runtime never import each other).

Each subcommand lives in its own module with ``HELP`` (one line),
``add_arguments(parser)`` and ``run(args) -> int``; the tool lists the module
names, so adding a command never means editing another command's code.
"""
from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence


class CliError(Exception):
    """A user-facing error: printed as one line, exit status 2."""


def build_parser(prog: str, description: str, version: str,
                 package: str, commands: Sequence[str],
                 only: str | None = None) -> argparse.ArgumentParser:
    """The tool's parser; with ``only``, the modules of the other commands are
    not imported (start-up pays for the command that runs, not for all)."""
    parser = argparse.ArgumentParser(prog=prog, description=description)
    parser.add_argument("--version", action="version", version=f"%(prog)s {version}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in commands:
        if only is not None and name.replace("_", "-") != only:
            # another command: listed, but its module (and what it imports) is not loaded
            sub.add_parser(name.replace("_", "-"))
            continue
        try:
            module = importlib.import_module(f"{package}.commands.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"{package}.commands.{name}":
                raise
            continue  # not built yet in this checkout
        p = sub.add_parser(name.replace("_", "-"), help=module.HELP, description=module.HELP)
        module.add_arguments(p)
        p.set_defaults(_run=module.run)
    return parser


def _chosen(argv: Sequence[str], commands: Sequence[str]) -> str | None:
    """The command ``argv`` names (its first word), or None (help, version,
    a typo: the full parser, which lists every command)."""
    if argv and argv[0] in {c.replace("_", "-") for c in commands}:
        return argv[0]
    return None


def run_cli(prog: str, description: str, version: str, package: str,
            commands: Sequence[str], argv: Sequence[str] | None = None) -> int:
    parser = build_parser(prog, description, version, package, commands,
                          _chosen(argv if argv is not None else sys.argv[1:], commands))
    args = parser.parse_args(argv)
    if not getattr(args, "_run", None):
        parser.print_help(sys.stderr)
        return 2
    try:
        return int(args._run(args) or 0)
    except CliError as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 1
