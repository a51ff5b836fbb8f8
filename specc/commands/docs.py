"""specc docs: build the static HTML documentation site with docutils."""
from __future__ import annotations

import argparse
from pathlib import Path

from specc.cli_base import CliError
from specc.commands.tree_arg import add_tree_argument, optional_tree
from specc.emit.html import ReportError, build_docs
from specc.commands.inputs import add_module_arguments, load_modules, output_dir
from specc.emit.rst import RstError
from specc.emit.site import SiteError

HELP = "build the HTML docs: module index, one page per module, verdicts from a report"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_module_arguments(parser)
    add_tree_argument(parser, "virtio-spec checkout: show each amendment as a diff against "
                              "its upstream wording")
    parser.add_argument("--report", metavar="FILE",
                        help="conformance report (JSON) whose verdicts are shown per statement")
    parser.add_argument("--assets", metavar="DIR", help="directory of SVG charts to show on the index")


def run(args: argparse.Namespace) -> int:
    modules = load_modules(args.modules)
    report = Path(args.report) if args.report else None
    assets = Path(args.assets) if args.assets else None
    if assets is not None and not assets.is_dir():
        raise CliError(f"{args.assets}: not a directory")
    out = output_dir(args.output)
    try:
        written = build_docs(modules, out, report, assets, optional_tree(args.spec_tree))
    except (ReportError, RstError, SiteError, ValueError) as exc:
        raise CliError(str(exc)) from None
    pages = sum(1 for p in written if p.suffix == ".html")
    print(f"wrote {pages} HTML page(s) to {out} (open {out / 'index.html'})")
    return 0
