"""The project's guides (``docs/*.md``) as pages of the docs site.

markdown-it-py renders them (CommonMark plus pipe tables, which the guides
use); its token stream is adjusted before rendering: headings get the ids
GitHub gives them (the guides link to each other's sections that way),
links between guides point at their pages, a link to a module's ``.vspec``
at that module's page, and a link to any other file of the repository
becomes plain text, since the site does not carry the repository. Raw HTML
in a guide is shown as text, never passed through.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from urllib.parse import urlsplit

from markdown_it import MarkdownIt
from markdown_it.token import Token

from specc.emit.escape import safe_link
from specc.emit.site import Page
from specc.emit.site_layout import TocEntry

GUIDE_PREFIX = "guide-"
GUIDES_GROUP = "Guides"


class GuideError(ValueError):
    """A guide that cannot be read (one line)."""


@dataclass(frozen=True)
class Guide:
    stem: str          # file name without .md
    text: str


def guide_page_name(stem: str) -> str:
    return GUIDE_PREFIX + stem


def read_guides(directory: Path) -> list[Guide]:
    """Every ``*.md`` directly in `directory`, sorted by name."""
    if not directory.is_dir():
        raise GuideError(f"{directory}: not a directory of guides")
    out = []
    for p in sorted(directory.glob("*.md")):
        try:
            out.append(Guide(p.stem, p.read_text(encoding="utf-8")))
        except (OSError, UnicodeDecodeError) as exc:
            raise GuideError(f"{p}: cannot read guide: {exc}") from None
    return out


def _markdown() -> MarkdownIt:
    return MarkdownIt("commonmark", {"html": False}).enable(["table", "strikethrough"])


def github_slug(text: str, seen: dict[str, int]) -> str:
    """The id GitHub gives a heading: lower case, punctuation dropped, spaces as
    hyphens, a repeated one numbered."""
    slug = re.sub(r"[^\w\- ]", "", text.strip().lower()).replace(" ", "-") or "section"
    n = seen.get(slug, 0)
    seen[slug] = n + 1
    return slug if n == 0 else f"{slug}-{n}"


def _retarget(href: str, guides: set[str], modules: set[str]) -> str | None:
    """Where a guide's link points in the site; None when it names a repository file."""
    parts = urlsplit(href)
    if parts.scheme or parts.netloc:
        return href if safe_link(href) else None
    if not parts.path:
        return href                                    # a fragment of the same guide
    path = PurePosixPath(parts.path)
    frag = f"#{parts.fragment}" if parts.fragment else ""
    if path.suffix == ".md" and len(path.parts) == 1 and path.stem in guides:
        return f"{guide_page_name(path.stem)}.html{frag}"
    if path.suffix == ".vspec" and path.stem in modules:
        return f"{path.stem}.html"
    return None


def _plain(inline: Token) -> str:
    """A heading's text without its markup (code spans keep their words)."""
    return "".join(c.content for c in inline.children or () if c.type in ("text", "code_inline"))


def _unlink(open_tok: Token, close_tok: Token, title: str) -> None:
    open_tok.tag = close_tok.tag = "span"
    open_tok.attrs = {"class": "repo-path", "title": f"in the repository: {title}"}


def guide_page(g: Guide, guides: set[str], modules: set[str]) -> Page:
    """One guide as a site page, its headings as the in-page contents."""
    md = _markdown()
    tokens = md.parse(g.text)
    title = g.stem
    seen: dict[str, int] = {}
    toc: list[TocEntry] = []
    drop: set[int] = set()
    for i, tok in enumerate(tokens):
        if tok.type == "heading_open":
            text = _plain(tokens[i + 1])
            if tok.tag == "h1" and title == g.stem and not drop:
                title = text
                drop |= {i, i + 1, i + 2}          # the layout writes the page title
                continue
            slug = github_slug(text, seen)
            tok.attrSet("id", slug)
            if tok.tag in ("h2", "h3"):
                toc.append(TocEntry(1 if tok.tag == "h2" else 2, text, slug))
        elif tok.type == "inline" and tok.children:
            _fix_inline(tok.children, guides, modules)
    kept = [t for i, t in enumerate(tokens) if i not in drop]
    body = md.renderer.render(kept, md.options, {})
    return Page(guide_page_name(g.stem), title, group=GUIDES_GROUP, body_html=body,
                toc=tuple(toc), nav_title=g.stem.replace("-", " "))


def _fix_inline(children: list[Token], guides: set[str], modules: set[str]) -> None:
    stack: list[tuple[Token, str]] = []
    for i, child in enumerate(children):
        if child.type == "link_open":
            href = str(child.attrGet("href") or "")
            target = _retarget(href, guides, modules)
            if target is None:
                stack.append((child, href))
            else:
                child.attrSet("href", target)
                stack.append((child, ""))
        elif child.type == "link_close" and stack:
            open_tok, dropped = stack.pop()
            if dropped:
                _unlink(open_tok, child, dropped)
        elif child.type == "image":
            # the site carries no repository images: the alternative text stands in
            children[i] = Token("text", "", 0, content=child.content)
