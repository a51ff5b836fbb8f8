"""The options `specc docs` and `specc build` share for the docs site: reports,
benchmark assets and guides (outside specc.commands, so that one command never
loads another)."""
from __future__ import annotations

import argparse
from pathlib import Path

from specc.cli_base import CliError
from specc.emit.charts import ChartError
from specc.emit.guides import Guide, GuideError, read_guides
from specc.emit.report_pages import ReportError
from specc.emit.rst import RstError
from specc.emit.site import SiteError

# what building the site can refuse, each with a one-line message
SITE_ERRORS = (ReportError, RstError, SiteError, ChartError, GuideError, ValueError)


def add_site_arguments(parser: argparse.ArgumentParser) -> None:
    """The options `specc docs` and `specc build` share."""
    parser.add_argument("--report", metavar="FILE|DIR", action="append", default=[],
                        help="conformance report (JSON), or a directory of them; repeatable. "
                             "Each gets a page, and every statement shows its latest verdict "
                             "on each device")
    parser.add_argument("--assets", metavar="DIR",
                        help="directory of benchmark results: each JSON with a 'chart' is drawn "
                             "with its data table, other SVGs are shown as they are")
    parser.add_argument("--guides", metavar="DIR",
                        help="directory of Markdown guides (e.g. docs) to render into the site")


def site_inputs(args: argparse.Namespace) -> tuple[list[Path], Path | None, list[Guide]]:
    """Reports, assets directory and guides named by the shared options."""
    assets = Path(args.assets) if args.assets else None
    if assets is not None and not assets.is_dir():
        raise CliError(f"{args.assets}: not a directory")
    try:
        guides = read_guides(Path(args.guides)) if args.guides else []
    except GuideError as exc:
        raise CliError(str(exc)) from None
    return [Path(r) for r in args.report], assets, guides
