"""What the docs site's search box can find: statements (by id, alias, keyword
and text), modules, sections, features, guides and their headings, reports,
and the upstream blocks of the coverage page."""
from __future__ import annotations

from collections.abc import Sequence

from specc.emit.rst import anchor, section_target
from specc.emit.site import Page
from specc.emit.site_layout import SearchEntry
from specc.model import Module
from specc.prose import with_condition

# Text beyond this is not searched: statements are short, module overviews are not.
MAX_TEXT = 600


def _clip(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= MAX_TEXT else text[:MAX_TEXT] + "…"


def module_entries(modules: Sequence[Module]) -> list[SearchEntry]:
    out: list[SearchEntry] = []
    for m in modules:
        out.append(SearchEntry("module", f"{m.name}: {m.title}" if m.title else m.name,
                               f"{m.name}.html", _clip(" ".join(p.plain() for p in m.prose))))
        for st in m.all_statements():
            words = [st.keyword or "", with_condition(st.condition, st.text).plain(),
                     " ".join(st.aliases), m.name]
            if st.untestable is not None:
                words.append("untestable: " + st.untestable.plain())
            out.append(SearchEntry("statement", st.id, f"{m.name}.html#{anchor(st.id)}",
                                   _clip(" ".join(w for w in words if w))))
        for s in m.all_sections():
            out.append(SearchEntry("section", s.title_path,
                                   f"{m.name}.html#{anchor(section_target(s.title_path))}",
                                   m.name))
        for f in m.features:
            out.append(SearchEntry("feature", f.name, f"{m.name}.html#{anchor(f.name)}",
                                   _clip(" ".join(p.plain() for p in f.prose))))
    return out


def page_entries(pages: Sequence[Page], kind: str) -> list[SearchEntry]:
    """A page and each heading of its contents."""
    out = []
    for p in pages:
        out.append(SearchEntry(kind, p.title, f"{p.name}.html", p.title))
        out += [SearchEntry(f"{kind} section", f"{p.title}: {t.title}",
                            f"{p.name}.html#{t.anchor}", t.title) for t in p.toc]
    return out
