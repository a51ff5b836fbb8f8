"""A static HTML site from RST pages, built with docutils.

Each page is parsed and written by docutils' html5 writer with a shared
stylesheet. Any docutils system message at WARNING level or above fails the
build: a broken reference or malformed table in generated RST is a bug in an
emitter, and a page that renders with a red error box is not a clean page.
"""
from __future__ import annotations

import io
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import docutils
from docutils import nodes
from docutils.core import publish_doctree, publish_from_doctree

from specc import limits
from specc.emit.escape import file_stem, safe_link

STYLESHEET_NAME = "style.css"
# Docutils 0.22 takes the writer's name as ``writer`` and deprecates
# ``writer_name``; older releases (pyproject allows >= 0.19) only know the latter.
_HTML5_WRITER = ({"writer": "html5"} if docutils.__version_info__ >= (0, 22)
                 else {"writer_name": "html5"})


@dataclass(frozen=True)
class Page:
    """One page of the site: ``name`` is the file stem (``name.html``)."""
    name: str
    title: str
    rst: str


class SiteError(Exception):
    """docutils reported problems in generated RST; the message lists them."""


def render_page(page: Page, stylesheet: str = STYLESHEET_NAME) -> str:
    """Render one page to HTML text; raise SiteError on any docutils message."""
    messages = io.StringIO()
    settings = {
        "_disable_config": True,          # ignore ~/.docutils and the like
        "report_level": 2,                # warnings and errors reach the stream
        "halt_level": 5,                  # never raise mid-parse: collect them all
        "warning_stream": messages,
        "stylesheet_path": "",
        "stylesheet": stylesheet,
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
    doctree = publish_doctree(source=page.rst, source_path=f"{page.name}.rst",
                              settings_overrides=settings)
    _add_exact_ids(doctree)
    _check_links(doctree, page)
    html = publish_from_doctree(doctree, settings_overrides=settings, **_HTML5_WRITER)
    problems = [line for line in messages.getvalue().splitlines() if line.strip()]
    if problems:
        first = problems[0]
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise SiteError(f"{first}{more}")
    return html


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


def build_site(pages: Sequence[Page], out_dir: Path, stylesheet_text: str,
               assets: Iterable[Path] = ()) -> list[Path]:
    """Write every page plus the stylesheet and assets; return the paths written.

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
    rendered = [(p, render_page(p)) for p in pages]
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for page, html in rendered:
        path = out_dir / f"{page.name}.html"
        path.write_text(html, encoding="utf-8")
        written.append(path)
    css = out_dir / STYLESHEET_NAME
    css.write_text(stylesheet_text, encoding="utf-8")
    written.append(css)
    for asset in assets:
        target = out_dir / "assets" / asset.name
        target.parent.mkdir(exist_ok=True)
        target.write_bytes(asset.read_bytes())
        written.append(target)
    return written
