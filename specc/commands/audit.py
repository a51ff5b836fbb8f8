"""`specc audit`: check an upstream spec tree; optionally measure our coverage of it."""
from __future__ import annotations

import argparse
import json
import sys

from specc.cli_base import CliError
from specc.audit import audit, summarise
from specc.audit.coverage import coverage_for
from specc.upstream.tree import TreeError, load_tree

HELP = "audit an upstream virtio spec tree (conformance lists, labels, feature bits, keywords)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--spec-tree", required=True, metavar="PATH",
                        help="a virtio-spec checkout (the directory holding virtio.tex)")
    parser.add_argument("--format", choices=("text", "json"), default="text",
                        help="text (file:line:col: severity: message) or json")
    parser.add_argument("--coverage", action="store_true",
                        help="also report which upstream normative blocks our modules restate and test")
    parser.add_argument("--spec", metavar="DIR", default="spec",
                        help="directory of .vspec modules for --coverage (default: spec)")
    parser.add_argument("--vectors", metavar="DIR",
                        help="directory of conformance vector files for --coverage")


def run(args: argparse.Namespace) -> int:

    try:
        tree = load_tree(args.spec_tree)
    except TreeError as exc:
        raise CliError(str(exc)) from None
    findings = audit(tree)
    cov = None
    if args.coverage:
        cov = coverage_for(tree, args.spec, args.vectors)
    if args.format == "json":
        doc = {
            "schema": "specc-audit/1",
            "tree": str(tree.root),
            "files": len(tree.files),
            "counts": {"normative_blocks": len(tree.blocks), "conformance_clauses": len(tree.clauses),
                       "features": len(tree.features), "keywords": len(tree.keywords)},
            "summary": summarise(findings),
            "findings": [f.as_json() for f in findings],
        }
        if cov is not None:
            doc["coverage"] = cov.as_json()
        json.dump(doc, sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        for f in findings:
            print(f.format())
        if cov is not None:
            print(cov.format_text())
        n_err = sum(1 for f in findings if f.severity == "error")
        print(f"{len(findings)} finding(s): {n_err} error(s), {len(findings) - n_err} warning(s) "
              f"in {len(tree.files)} files", file=sys.stderr)
    return 1 if findings else 0
