"""specc rst: write one reStructuredText page per vspec module."""
from __future__ import annotations

import argparse

from specc.cli_base import CliError
from specc.commands.tree_arg import add_tree_argument, optional_tree
from specc.commands.inputs import add_module_arguments, load_modules, output_dir
from specc.emit.rst import RstError
from specc.emit.writers import write_rst

HELP = "write one reStructuredText page per module"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_module_arguments(parser)
    add_tree_argument(parser, "virtio-spec checkout: show each amendment as a diff against "
                              "its upstream wording")


def run(args: argparse.Namespace) -> int:
    modules = load_modules(args.modules)
    out = output_dir(args.output)
    try:
        written = write_rst(modules, out, optional_tree(args.spec_tree))
    except RstError as exc:
        raise CliError(str(exc)) from None
    print(f"wrote {len(written)} RST page(s) to {out}")
    return 0
