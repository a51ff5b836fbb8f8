"""Passages of an upstream tree: the paragraph, list item or sentence that a
short quoted fragment picks out inside one section or normative block.

Fragments match with whitespace normalised (any run of spaces and line
breaks in the tree matches one space in the fragment), so an author quotes
the words, never the tree's layout. A fragment that matches nothing or more
than one passage is a PassageError that lists the candidates.
"""
from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field

from specc.upstream.source import Position
from specc.upstream.tree import Section, SpecTree

UNITS = ("paragraph", "item", "statement")
PREVIEW_WORDS = 10
MAX_CANDIDATES = 6

_BLANK_LINE = re.compile(r"\n[ \t]*\n\s*")
# A sentence ends at . ! or ? followed by space and a capital or a command.
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z\\])")
# Lines that are markup, not prose: headings, labels, list and environment bounds.
_MARKUP_LINE = re.compile(r"^\s*\\(?:begin|end|label|drivernormative|devicenormative|chapter|"
                          r"section|subsection|subsubsection|paragraph|item)\b")


class PassageError(Exception):
    """A scope or fragment that does not pick out exactly one passage."""

    def __init__(self, message: str, candidates: list[str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.candidates = candidates or []


@dataclass(frozen=True)
class Passage:
    """One unit of upstream text: its file, its span and the LaTeX it holds."""
    unit: str
    file: str
    start: int
    end: int
    pos: Position
    text: str


@dataclass(frozen=True)
class Scope:
    """The own text of a section or normative block (subsections excluded)."""
    label: str
    file: str
    start: int
    end: int
    section: Section = field(compare=False)


def fragment_pattern(fragment: str) -> re.Pattern:
    """A regex for `fragment` that lets any whitespace run stand for a space."""
    words = fragment.split()
    return re.compile(r"\s+".join(re.escape(w) for w in words))


def find_fragment(text: str, fragment: str, start: int = 0, end: int | None = None) -> list[tuple[int, int]]:
    """Spans of every whitespace-normalised occurrence of `fragment` in text[start:end]."""
    if not fragment.split():
        return []
    end = len(text) if end is None else end
    return [(m.start(), m.end()) for m in fragment_pattern(fragment).finditer(text, start, end)]


def preview(text: str, words: int = PREVIEW_WORDS) -> str:
    parts = text.split()
    return " ".join(parts[:words]) + (" ..." if len(parts) > words else "")


def own_end(sec: Section) -> int:
    """End of a section's own text, before its first subsection (same file)."""
    for child in sec.children:
        if child.file == sec.file:
            return child.offset
    return sec.end_offset


def scope(tree: SpecTree, where: str) -> Scope:
    """The section or block named by a label (sec:, drivernormative:, devicenormative:)
    or by a title path."""
    sec: Section | None = None
    label = where
    if where.startswith(("drivernormative:", "devicenormative:")):
        block = tree.block_by_label(where)
        sec = block.heading if block else None
    else:
        path = where[4:] if where.startswith("sec:") else where
        label = "sec:" + path
        sec = tree.section_by_label(path)
        if sec is None:
            parts = tuple(p.strip() for p in path.split("/"))
            found = [s for s in tree.sections if s.kind == "section" and s.path == parts]
            sec = found[0] if len(found) == 1 else None
    if sec is None:
        known = [b.label for b in tree.blocks] + ["sec:" + s.label for s in tree.sections if s.label]
        near = difflib.get_close_matches(label, known, n=3, cutoff=0.6)
        raise PassageError(f"no section or normative block '{where}' in the tree", near)
    return Scope(label, sec.file, sec.body_offset, own_end(sec), sec)


def _trim(text: str, start: int, end: int) -> tuple[int, int]:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return start, end


def _paragraphs(text: str, start: int, end: int) -> list[tuple[int, int]]:
    """Prose paragraphs: blank-line separated, markup lines at their edges left out."""
    out = []
    cur = start
    bounds = [(m.start(), m.end()) for m in _BLANK_LINE.finditer(text, start, end)]
    for a, b in bounds + [(end, end)]:
        s, e = _trim(text, cur, a)
        cur = b
        # Drop whole markup lines at the start and end of the chunk.
        while s < e and _MARKUP_LINE.match(text, s):
            nl = text.find("\n", s, e)
            s = e if nl < 0 else nl + 1
            s, e = _trim(text, s, e)
        while s < e:
            ls = text.rfind("\n", s, e) + 1
            if ls > s and _MARKUP_LINE.match(text, ls):
                s, e = _trim(text, s, ls)
            else:
                break
        if s < e:
            out.append((s, e))
    return out


def _items(tree: SpecTree, sc: Scope) -> list[tuple[int, int]]:
    text = tree.sources[sc.file].text
    out = []
    for lst in tree.lists:
        if lst.file != sc.file:
            continue
        for it in lst.items:
            if sc.start <= it.offset < sc.end:
                end = it.end_offset if it.end_offset > it.offset else lst.end_offset
                out.append(_trim(text, it.offset, end))
    return out


def _sentences(text: str, paragraphs: list[tuple[int, int]]) -> list[tuple[int, int]]:
    out = []
    for s, e in paragraphs:
        cur = s
        for m in _SENTENCE_END.finditer(text, s, e):
            out.append((cur, m.start()))
            cur = m.end()
        out.append((cur, e))
    return out


def units(tree: SpecTree, sc: Scope, unit: str) -> list[tuple[int, int]]:
    text = tree.sources[sc.file].text
    if unit == "item":
        return _items(tree, sc)
    paras = _paragraphs(text, sc.start, sc.end)
    return _sentences(text, paras) if unit == "statement" else paras


def locate(tree: SpecTree, where: str, unit: str, at: str) -> Passage:
    """The one `unit` of the section or block `where` that holds fragment `at`."""
    if unit not in UNITS:
        raise PassageError(f"unknown unit '{unit}' (use {', '.join(UNITS)})")
    sc = scope(tree, where)
    src = tree.sources[sc.file]
    spans = units(tree, sc, unit)
    word = unit
    if not spans:
        raise PassageError(f"{sc.label} ({sc.file}) has no {word} to amend")
    hits = [(s, e) for s, e in spans if find_fragment(src.text, at, s, e)]

    def describe(span: tuple[int, int]) -> str:
        return f"{src.position(span[0])}: {preview(src.text[span[0]:span[1]])}"
    if not hits:
        # Nearest units first (most of the fragment's words), so the one the
        # author meant is likely listed.
        want = {w.lower() for w in re.findall(r"\w+", at)}
        ranked = sorted(spans, key=lambda sp: -len(want & {
            w.lower() for w in re.findall(r"\w+", src.text[sp[0]:sp[1]])}))
        raise PassageError(f"no {word} of {sc.label} contains '{at}'",
                           [describe(sp) for sp in ranked[:MAX_CANDIDATES]])
    if len(hits) > 1:
        raise PassageError(f"'{at}' is in {len(hits)} {word}s of {sc.label}: quote more words",
                           [describe(sp) for sp in hits[:MAX_CANDIDATES]])
    s, e = hits[0]
    return Passage(unit, sc.file, s, e, src.position(s), src.text[s:e])
