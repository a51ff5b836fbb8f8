"""The frame every page of the docs site shares: head, navigation, search box,
in-page contents, and the stylesheet, script and search index beside the pages.

Everything a page needs is in the site's own directory (no external font,
script or stylesheet), and the search index is a script that sets a global,
so the site works opened from ``file://`` with no server.
"""
from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape
from importlib import resources

STYLESHEET_NAME = "style.css"
SCRIPT_NAME = "site.js"
SEARCH_INDEX_NAME = "search-index.js"
SITE_NAME = "virtio-specc"
# A page with at least this many headings gets an in-page table of contents.
TOC_MIN_ENTRIES = 4


@dataclass(frozen=True)
class NavEntry:
    group: str
    title: str
    page: str


@dataclass(frozen=True)
class TocEntry:
    depth: int          # 1 for a top-level section of the page, 2 below it
    title: str
    anchor: str


@dataclass(frozen=True)
class Rendered:
    """A page's body as HTML, its title and its headings."""
    title: str
    body: str
    toc: tuple[TocEntry, ...]


@dataclass(frozen=True)
class SearchEntry:
    """One thing the search box can find: ``kind`` (statement, section, ...),
    ``title`` shown in the results, ``url`` within the site, ``text`` searched."""
    kind: str
    title: str
    url: str
    text: str

    def as_json(self) -> list[str]:
        return [self.kind, self.title, self.url, self.text]


def _nav_html(nav: Sequence[NavEntry], current: str) -> str:
    groups: dict[str, list[NavEntry]] = {}
    for e in nav:
        groups.setdefault(e.group, []).append(e)
    out = ['<nav class="sidebar" aria-label="Site">']
    for group, entries in groups.items():
        out.append(f'<h2 class="nav-group">{escape(group)}</h2><ul>')
        for e in entries:
            here = ' aria-current="page"' if e.page == current else ""
            out.append(f'<li><a href="{escape(e.page)}.html"{here}>{escape(e.title)}</a></li>')
        out.append("</ul>")
    out.append("</nav>")
    return "\n".join(out)


def _toc_html(toc: Sequence[TocEntry]) -> str:
    if len(toc) < TOC_MIN_ENTRIES:
        return ""
    out = ['<nav class="toc" aria-label="On this page"><h2>On this page</h2><ul>']
    for e in toc:
        out.append(f'<li class="toc-{e.depth}"><a href="#{escape(e.anchor)}">'
                   f'{escape(e.title)}</a></li>')
    out.append("</ul></nav>")
    return "\n".join(out)


def layout(page: str, r: Rendered, nav: Sequence[NavEntry]) -> str:
    """The whole HTML document of one page."""
    title = escape(r.title)
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title} · {SITE_NAME}</title>
<link rel="stylesheet" href="{STYLESHEET_NAME}">
</head>
<body>
<a class="skip" href="#content">Skip to the content</a>
<header class="topbar">
<a class="brand" href="index.html">{SITE_NAME}</a>
<div class="search" role="search">
<label for="search-box" class="visually-hidden">Search the site</label>
<input id="search-box" type="search" autocomplete="off" placeholder="Search ids, titles, text">
<ol id="search-results" aria-live="polite"></ol>
</div>
</header>
<div class="frame">
{_nav_html(nav, page)}
<main id="content">
<h1 class="title">{title}</h1>
{_toc_html(r.toc)}
{_wrap_tables(_strip_title(r.body))}
</main>
</div>
<script src="{SEARCH_INDEX_NAME}"></script>
<script src="{SCRIPT_NAME}"></script>
</body>
</html>
"""


def _strip_title(body: str) -> str:
    """docutils puts the page title first in the body; the layout writes its own."""
    if body.startswith('<h1 class="title">'):
        return body.split("</h1>", 1)[1].lstrip("\n")
    return body


def _wrap_tables(body: str) -> str:
    """Each table in a box of its own that scrolls sideways when the table is wider
    than the page, so no column is crushed to fit."""
    return (body.replace("<table", '<div class="table-wrap"><table')
            .replace("</table>", "</table></div>"))


def search_index_js(entries: Sequence[SearchEntry]) -> str:
    """The search index as a script: a file:// page may not fetch JSON, it may run a script."""
    data = json.dumps([e.as_json() for e in entries], ensure_ascii=False, separators=(",", ":"))
    # Inside <script> nothing may close the element; in a file of its own this is belt and braces.
    data = data.replace("</", "<\\/")
    return f"window.SPECC_SEARCH = {data};\n"


def site_assets(search_index: str) -> dict[str, str]:
    """The files every site has beside its pages: stylesheet, script, search index."""
    data = resources.files("specc") / "data"
    return {STYLESHEET_NAME: (data / "site.css").read_text(encoding="utf-8"),
            SCRIPT_NAME: (data / "site.js").read_text(encoding="utf-8"),
            SEARCH_INDEX_NAME: search_index}
