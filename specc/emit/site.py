"""A static HTML site from RST pages (docutils) and pre-rendered pages.

Each RST page is parsed and written by docutils' html5 writer; every page,
whatever made its body, is then set in one layout (`specc.emit.site_layout`):
navigation, search box, an in-page table of contents on long pages, and a
shared stylesheet and script. Any docutils system message at WARNING level
or above fails the build: a broken reference or malformed table in
generated RST is a bug in an emitter, and a page that renders with a red
error box is not a clean page.
"""
from __future__ import annotations

import io
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from docutils import nodes
from docutils.core import publish_doctree, publish_from_doctree
from docutils.writers import html5_polyglot

from specc import limits
from specc.emit.escape import file_stem, safe_link
from specc.emit.site_layout import NavEntry, Rendered, TocEntry, layout, site_assets

@dataclass(frozen=True)
class Page:
    """One page of the site: ``name`` is the file stem (``name.html``).

    The body is ``rst`` rendered by docutils, or ``body_html`` when another
    renderer made it (the Markdown guides), with its headings in ``toc``."""
    name: str
    title: str
    rst: str = ""
    group: str = "Overview"
    body_html: str | None = None
    toc: tuple[TocEntry, ...] = field(default=())
    nav_title: str = ""            # a shorter title for the navigation, when the title is long


class SiteError(Exception):
    """docutils reported problems in generated RST; the message lists them."""


def _settings(messages: io.StringIO) -> dict:
    return {
        "_disable_config": True,          # ignore ~/.docutils and the like
        "report_level": 2,                # warnings and errors reach the stream
        "halt_level": 5,                  # never raise mid-parse: collect them all
        "warning_stream": messages,
        "stylesheet_path": "",
        "stylesheet": "",
        "embed_stylesheet": False,
        "output_encoding": "unicode",
        "input_encoding": "unicode",
        "doctitle_xform": True,
        "section_self_link": False,
        "datestamp": None,
        "generator": False,               # keep output identical across docutils builds
        "file_insertion_enabled": False,  # generated pages never include files
        "raw_enabled": False,
        # A paragraph is one RST line; the longest prose specc accepts, escaped
        # and with its references as links, stays within this.
        "line_length_limit": 8 * limits.MAX_PROSE,
        "syntax_highlight": "none",
    }


def render_body(page: Page) -> Rendered:
    """The page's title, body HTML and headings; raise SiteError on any docutils message."""
    if page.body_html is not None:
        return Rendered(page.title, page.body_html, page.toc)
    messages = io.StringIO()
    settings = _settings(messages)
    doctree = publish_doctree(source=page.rst, source_path=f"{page.name}.rst",
                              settings_overrides=settings)
    _add_exact_ids(doctree)
    _check_links(doctree, page)
    toc = _toc(doctree)
    writer = html5_polyglot.Writer()
    publish_from_doctree(doctree, writer=writer, settings_overrides=settings)
    parts = writer.parts
    problems = [line for line in messages.getvalue().splitlines() if line.strip()]
    if problems:
        first = problems[0]
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise SiteError(f"{first}{more}")
    title = doctree.get("title") or page.title      # plain text: the layout escapes it
    return Rendered(title, parts["body_pre_docinfo"] + parts["docinfo"] + parts["body"], toc)


def render_page(page: Page, nav: Sequence[NavEntry] = ()) -> str:
    """Render one page to a whole HTML document in the site's layout."""
    return layout(page.name, render_body(page), nav)


def _toc(doctree: nodes.document) -> tuple[TocEntry, ...]:
    """Top two levels of sections below the page title, for the in-page contents."""
    out: list[TocEntry] = []

    def walk(node: nodes.Element, depth: int) -> None:
        for child in node.children:
            if isinstance(child, nodes.section) and child.get("ids"):
                title = child.next_node(nodes.title)
                if title is not None:
                    out.append(TocEntry(depth, title.astext(), child["ids"][0]))
                if depth < 2:
                    walk(child, depth + 1)
    walk(doctree, 1)
    return tuple(out)


def _check_links(doctree: nodes.document, page: Page) -> None:
    """Every link and image on a page is http, https, mailto or in-site.

    The emitters escape what could become a link; this is the rule for the
    HTML context itself, whatever RST produced the tree."""
    for node in doctree.findall(lambda n: isinstance(n, (nodes.reference, nodes.image))):
        uri = node.get("refuri") if isinstance(node, nodes.reference) else node.get("uri")
        if uri is not None and not safe_link(uri):
            raise SiteError(f"{page.name}.rst: a link to {uri[:80]!r} is not http, https, "
                            "mailto or in-site")


_EXACT_ID = re.compile(r"^[A-Za-z][A-Za-z0-9_.:-]*$")


def _add_exact_ids(doctree: nodes.document) -> None:
    """Give each explicitly named element its name as an extra HTML id.

    docutils turns the target ``swiotlb.dev.no-access-outside`` into the id
    ``swiotlb-dev-no-access-outside``; a reader holding a requirement id from
    a report should be able to use it as it is, so both anchors exist.
    Names with spaces (section paths) keep only docutils' id."""
    for node in doctree.findall(nodes.Element):
        if not node.get("ids"):
            continue
        for name in node.get("names", []):
            if _EXACT_ID.match(name) and name not in doctree.ids and name not in node["ids"]:
                node["ids"].append(name)
                doctree.ids[name] = node


def navigation(pages: Sequence[Page]) -> list[NavEntry]:
    """One entry per page, in the order given, grouped by ``Page.group``."""
    return [NavEntry(p.group, p.nav_title or p.title, p.name) for p in pages]


def build_site(pages: Sequence[Page], out_dir: Path,
               search_index: str = "window.SPECC_SEARCH = [];\n",
               assets: Iterable[tuple[str, bytes]] = ()) -> list[Path]:
    """Write every page, the stylesheet, the script, the search index and the
    assets (``(name, bytes)``, under ``assets/``); return the paths written.

    All pages are rendered before anything is written, so a failing page
    leaves no half-built site behind.
    """
    names = [p.name for p in pages]
    for n in names:
        try:
            file_stem(n)
        except ValueError as exc:
            raise SiteError(str(exc)) from None
    if len(set(names)) != len(names):
        dup = sorted({n for n in names if names.count(n) > 1})[0]
        raise SiteError(f"two pages would both be written as {dup}.html")
    nav = navigation(pages)
    rendered = [(p, render_page(p, nav)) for p in pages]
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for page, html in rendered:
        path = out_dir / f"{page.name}.html"
        path.write_text(html, encoding="utf-8")
        written.append(path)
    for name, text in site_assets(search_index).items():
        path = out_dir / name
        path.write_text(text, encoding="utf-8")
        written.append(path)
    for name, data in assets:
        target = out_dir / "assets" / file_stem_of(name)
        target.parent.mkdir(exist_ok=True)
        target.write_bytes(data)
        written.append(target)
    return written


def file_stem_of(name: str) -> str:
    """An asset's file name, checked to be plain (no directories, no odd characters)."""
    stem, dot, ext = name.rpartition(".")
    try:
        file_stem(stem if dot else name)
    except ValueError as exc:
        raise SiteError(str(exc)) from None
    return name
