"""The HTML documentation site: an overview, one page per module, the guides,
a coverage page, one page per conformance report, and the benchmark charts,
every page in one layout with navigation and search.

Module, coverage and report pages are RST (`specc.emit.rst` and neighbours)
rendered by docutils in `specc.emit.site`; the guides are Markdown
(`specc.emit.guides`); charts are drawn from their data (`specc.emit.charts`).
"""
from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from html import escape
from pathlib import Path

from specc.audit.coverage import coverage_of
from specc.emit.charts import ChartError, chart_figure, parse_chart
from specc.emit.coverage_page import COVERAGE_PAGE, coverage_rst
from specc.emit.escape import rst_paragraph, rst_text
from specc.emit.guides import GUIDES_GROUP, Guide, guide_page
from specc.emit.report_pages import (DeviceReport, ReportError, merged_verdicts, read_report,
                                     read_reports, report_rst, reports_index_rows)
from specc.emit.rst import VERDICTS, ROLES, SiteIndex, Verdict, heading, list_table, module_rst
from specc.emit.site import Page, build_site
from specc.emit.site_layout import SearchEntry, search_index_js
from specc.emit.site_search import module_entries, page_entries
from specc.model import Module
from specc.upstream.tree import SpecTree

__all__ = ["ReportError", "read_report", "build_docs", "site_pages"]

INDEX = "index"
BENCHMARKS = "benchmarks"
OVERVIEW = "Overview"
REPORTS_GROUP = "Conformance reports"
_GROUPS = {"proposal": "Proposals", "baseline": "Baseline modules"}


@dataclass(frozen=True)
class ChartAsset:
    """A chart for the benchmarks page: drawn from data, or an SVG picture as it is."""
    name: str
    figure_html: str = ""
    svg: bytes = b""


def index_rst(modules: list[Module], verdicts: dict[str, Verdict] | None,
              reports: list[DeviceReport], has_charts: bool, guides: list[Page]) -> str:
    title = "virtio-specc: specification modules"
    bar = "=" * len(title)
    out = [f"{bar}\n{title}\n{bar}\n", ROLES,
           "Each module is a change to the virtio specification (proposal) or a restatement "
           "of upstream rules the conformance suite tests (baseline). Every normative "
           "statement has a card with its id as an anchor; the search box finds statements "
           "by id, title or a word of their text.\n"]
    header = ["Module", "Kind", "Title", "Features", "Statements", "Checks", "Untestable"]
    if verdicts is not None:
        header.append("Verdicts (statements)")
    rows = []
    for m in modules:
        stmts = list(m.all_statements())
        row = [f"`{m.name} <{m.name}.html>`__", m.kind, rst_paragraph(m.title or ""),
               str(len(m.features)), str(len(stmts)), str(sum(len(s.checks) for s in stmts)),
               str(sum(1 for s in stmts if s.untestable is not None))]
        if verdicts is not None:
            tally = Counter(verdicts[s.id].overall for s in stmts if s.id in verdicts)
            row.append(", ".join(f":verdict-{v.lower()}:`{v}` {tally[v]}" for v in VERDICTS
                                 if tally[v]) or "not run")
        rows.append(row)
    # the verdict tally gets room for its badges side by side (site.css)
    out.append(list_table(header, rows, css_class="module-index" if verdicts is not None else ""))
    out.append(heading("Where to go next", 0))
    more = [f"- `Coverage <{COVERAGE_PAGE}.html>`__: which statements are tested, which "
            "cannot be and why, and the upstream blocks not covered yet."]
    if reports:
        more.append("- Conformance reports: the latest verdicts of each device, linked to the "
                    "statement cards (below).")
    if has_charts:
        more.append(f"- `Benchmarks <{BENCHMARKS}.html>`__: the measured cost of each "
                    "protection mode, as charts with their data.")
    if guides:
        more.append("- Guides: " + ", ".join(f"`{rst_text(g.title)} <{g.name}.html>`__"
                                             for g in guides) + ".")
    out.append("\n".join(more) + "\n")
    if reports:
        out.append(heading("Conformance reports", 0))
        out.append(list_table(["Device", "Statements by verdict"], reports_index_rows(reports)))
    return "\n".join(out)


def read_charts(assets: Path) -> list[ChartAsset]:
    """Charts in `assets`: each JSON with a ``chart`` description, and each SVG
    that no such JSON describes (shown as a picture)."""
    out: list[ChartAsset] = []
    drawn: set[str] = set()
    for p in sorted(assets.glob("*.json")):
        try:
            data = json.loads(p.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
            raise ChartError(f"{p}: not readable JSON ({exc})") from None
        if isinstance(data, dict) and "chart" in data:
            chart = parse_chart(data["chart"], str(p))
            out.append(ChartAsset(p.stem, chart_figure(chart, f"chart-{p.stem}")))
            drawn.add(p.stem)
    for p in sorted(assets.glob("*.svg")):
        if p.stem not in drawn:
            out.append(ChartAsset(p.name, svg=p.read_bytes()))
    return out


def benchmarks_page(charts: list[ChartAsset]) -> Page:
    parts = ["<p>Each chart shows one benchmark's figures as measured; the numbers it is "
             "drawn from are in the table beside it.</p>"]
    for c in charts:
        if c.figure_html:
            parts.append(c.figure_html)
        else:
            parts.append(f'<figure class="chart"><img src="assets/{escape(c.name)}" '
                         f'alt="chart {escape(c.name)}"><figcaption>{escape(c.name)} (a picture '
                         f'without its data)</figcaption></figure>')
    return Page(BENCHMARKS, "Benchmarks", group=OVERVIEW, body_html="\n".join(parts))


def site_pages(modules: list[Module], verdicts: dict[str, Verdict] | None = None,
               charts: list[ChartAsset] = (), tree: SpecTree | None = None,
               reports: list[DeviceReport] = (), guides: list[Guide] = ()) -> list[Page]:
    idx = SiteIndex.of(modules)
    names = {m.name for m in modules}
    reserved = {INDEX, COVERAGE_PAGE, BENCHMARKS}
    if names & reserved:
        raise ValueError(f"a module named '{sorted(names & reserved)[0]}' would overwrite a "
                         "page of the site")
    reports = list(reports)
    if verdicts is None:
        verdicts = merged_verdicts(reports)
    guide_pages = [guide_page(g, {x.stem for x in guides}, names) for g in guides]
    cov = coverage_of(tree, modules, None) if tree is not None else None
    cov_rst, labels = coverage_rst(modules, idx, cov, verdicts)
    pages = [Page(INDEX, "Overview", index_rst(modules, verdicts, reports, bool(charts),
                                               guide_pages), group=OVERVIEW),
             Page(COVERAGE_PAGE, "Coverage", cov_rst, group=OVERVIEW)]
    if charts:
        pages.append(benchmarks_page(list(charts)))
    for kind in ("proposal", "baseline"):
        pages += [Page(m.name, m.name, module_rst(m, idx, verdicts, None, tree),
                       group=_GROUPS[kind]) for m in modules if m.kind == kind]
    pages += [Page(m.name, m.name, module_rst(m, idx, verdicts, None, tree), group=m.kind)
              for m in modules if m.kind not in _GROUPS]
    pages += guide_pages
    pages += [Page(r.page, r.device, report_rst(r, idx, labels), group=REPORTS_GROUP,
                   nav_title=r.label)
              for r in reports]
    return pages


def search_entries(modules: list[Module], pages: list[Page]) -> list[SearchEntry]:
    return (module_entries(modules)
            + page_entries([p for p in pages if p.group == GUIDES_GROUP], "guide")
            + page_entries([p for p in pages if p.group == REPORTS_GROUP], "report")
            + page_entries([p for p in pages if p.name in (COVERAGE_PAGE, BENCHMARKS)], "page"))


def build_docs(modules: list[Module], out_dir: Path, report: Path | list[Path] | None = None,
               assets: Path | None = None, tree: SpecTree | None = None,
               guides: list[Guide] = ()) -> list[Path]:
    """Write the site (amendments as diffs against `tree` when given); raise
    SiteError / ReportError / ChartError on bad input."""
    paths = [report] if isinstance(report, Path) else list(report or [])
    reports = read_reports(paths)
    charts = read_charts(assets) if assets is not None else []
    pages = site_pages(modules, None, charts, tree, reports, guides)
    svgs = [(c.name, c.svg) for c in charts if c.svg]
    return build_site(pages, out_dir, search_index_js(search_entries(modules, pages)), svgs)
