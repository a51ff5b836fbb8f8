"""Walk a built HTML site and list every internal link that does not resolve."""
from __future__ import annotations

from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit


class _Collector(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.ids: set[str] = set()
        self.hrefs: list[str] = []
        self.srcs: list[str] = []
        self.duplicate_ids: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if value is None:
                continue
            if name == "id" or (name == "name" and tag == "a"):
                if name == "id" and value in self.ids:
                    self.duplicate_ids.append(value)
                self.ids.add(value)
            elif name == "href":
                self.hrefs.append(value)
            elif name == "src":
                self.srcs.append(value)


def _parse(path: Path) -> _Collector:
    c = _Collector()
    c.feed(path.read_text(encoding="utf-8"))
    c.close()
    return c


def broken_links(site: Path) -> list[str]:
    """Return ``page: href`` for each internal link or fragment that fails."""
    pages = {p.relative_to(site).as_posix(): _parse(p) for p in sorted(site.rglob("*.html"))}
    problems: list[str] = []
    for name, page in pages.items():
        for dup in page.duplicate_ids:
            problems.append(f"{name}: duplicate id {dup!r}")
        for ref in page.hrefs + page.srcs:
            parts = urlsplit(ref)
            if parts.scheme or parts.netloc:
                continue  # external: not ours to check offline
            target = name if not parts.path else (
                (Path(name).parent / unquote(parts.path)).as_posix())
            if not parts.path:
                pass
            elif not (site / target).exists():
                problems.append(f"{name}: {ref} (no such file)")
                continue
            if parts.fragment:
                if target not in pages:
                    problems.append(f"{name}: {ref} (fragment into a non-HTML file)")
                elif unquote(parts.fragment) not in pages[target].ids:
                    problems.append(f"{name}: {ref} (no such anchor)")
    return problems
