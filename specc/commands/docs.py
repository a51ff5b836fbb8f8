"""specc docs: build the static HTML documentation site with docutils."""
from __future__ import annotations

import argparse

from specc.cli_base import CliError
from specc.site_options import SITE_ERRORS, add_site_arguments, site_inputs
from specc.tree_option import add_tree_argument, optional_tree
from specc.emit.html import build_docs
from specc.commands.inputs import add_module_arguments, load_modules, output_dir

HELP = ("build the HTML docs site: modules, guides, coverage, conformance reports and "
        "benchmark charts, with navigation and search")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_module_arguments(parser)
    add_tree_argument(parser, "virtio-spec checkout: show each amendment as a diff against "
                              "its upstream wording, and list upstream blocks on the coverage page")
    add_site_arguments(parser)


def run(args: argparse.Namespace) -> int:
    modules = load_modules(args.modules)
    reports, assets, guides = site_inputs(args)
    out = output_dir(args.output)
    try:
        written = build_docs(modules, out, reports, assets, optional_tree(args.spec_tree), guides)
    except SITE_ERRORS as exc:
        raise CliError(str(exc)) from None
    pages = sum(1 for p in written if p.suffix == ".html")
    print(f"wrote {pages} HTML page(s) to {out} (open {out / 'index.html'})")
    return 0
