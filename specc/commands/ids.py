"""specc ids: list statement ids and fingerprints; update the id registry."""
from __future__ import annotations

import argparse
import os
import sys

from specc import registry as reg
from specc.cli_base import CliError
from specc.pipeline import check_files
from specc.tree_option import add_tree_argument, optional_tree

HELP = "list normative statement ids and fingerprints; --update rewrites the id registry"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("files", nargs="+", metavar="FILE")
    parser.add_argument("--update", action="store_true",
                        help="write the current ids, fingerprints and aliases to the registry")
    parser.add_argument("--registry", metavar="PATH",
                        help="registry file (default: ids.json beside the first file)")
    add_tree_argument(parser, "the virtio-spec checkout cited statements are read from (needed "
                              "to record a new or changed citation)")


def run(args: argparse.Namespace) -> int:
    result = check_files(args.files, use_registry=False, tree=optional_tree(args.spec_tree))
    errors = [d for d in result.diagnostics if d.is_error]
    if errors:
        print(result.render(), file=sys.stderr)
        print(f"specc: {len(errors)} error(s); fix them before listing or updating ids", file=sys.stderr)
        return 2
    path = args.registry or reg.default_path(args.files)
    if not args.update:
        for m in result.modules:
            for st in m.all_statements():
                alias = f"  (aliases: {', '.join(st.aliases)})" if st.aliases else ""
                cited = ""
                if st.cites is not None:
                    up = (result.cited or {}).get(st.id)
                    cited = f"  (cites {st.cites.label}, {up.where if up else st.cites.locator}" + \
                        (f", upstream {up.fingerprint})" if up else ")")
                print(f"{st.id}\t{st.fingerprint}\t{st.keyword or '-'}{alias}{cited}")
        return 0
    existing: dict = {}
    if os.path.exists(path):
        try:
            existing = reg.read(path)
        except reg.RegistryError as exc:
            raise CliError(str(exc)) from None
    try:
        updated, changes = reg.update(result.modules, existing, result.cited)
    except reg.RegistryError as exc:
        raise CliError(str(exc)) from None
    text = reg.render(updated)
    try:
        with open(path, "w", encoding="utf-8") as fh:
            fh.write(text)
    except OSError as exc:
        raise CliError(f"{path}: cannot write id registry: {exc.strerror or exc}") from None
    for c in changes:
        print(c)
    print(f"{path}: {len(updated)} statements, {len(changes)} change(s)")
    return 0
