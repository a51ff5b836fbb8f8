"""The --spec-tree argument the commands share: an upstream checkout, read once."""
from __future__ import annotations

import argparse

from specc.cli_base import CliError
from specc.upstream.tree import SpecTree, TreeError, load_tree


def add_tree_argument(parser: argparse.ArgumentParser, help: str) -> None:
    parser.add_argument("--spec-tree", metavar="PATH", help=help)


def optional_tree(path: str | None) -> SpecTree | None:
    """The tree at `path` (None when not given); a path that is no tree is a CliError."""
    if not path:
        return None
    try:
        return load_tree(path)
    except TreeError as exc:
        raise CliError(str(exc)) from None
