"""specc vectors: write conformance vectors (JSON) for vspec modules."""
from __future__ import annotations

import argparse
import json

from specc.cli_base import CliError
from specc.commands.inputs import add_module_arguments, load_modules, output_dir
from specc.emit.vectors import VectorError
from specc.emit.writers import EmitError, write_vectors

HELP = "write conformance vectors (one JSON file per module, schema-checked)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_module_arguments(parser)


def run(args: argparse.Namespace) -> int:
    modules = load_modules(args.modules)
    out = output_dir(args.output)
    try:
        written = write_vectors(modules, out)
    except (VectorError, EmitError) as exc:
        raise CliError(str(exc)) from None
    tests = sum(json.loads(p.read_text())["numberOfTests"] for p in written)
    print(f"wrote {len(written)} vector file(s), {tests} tests, to {out}")
    return 0
