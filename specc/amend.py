"""Amendments applied to the upstream passage they change.

`apply_amendment(tree, amendment, idx)` finds the passage (specc.upstream.
passages), applies the module's edits to its LaTeX and returns both
wordings: the LaTeX the patch writes in place of the old passage, and
plain-text forms of old and new for the docs' diff. `word_diff` turns the
two plain texts into runs of kept, removed and added words.

Every failure is an AmendError naming the source position of the module's
construct it concerns (the `at` fragment or the edit), with the candidates.
"""
from __future__ import annotations

import difflib
import re
from dataclasses import dataclass

from specc.emit.latex import RefIndex, prose as latex_prose, wrap
from specc.model import Amendment, SourcePos, TextEdit
from specc.upstream.passages import (Passage, PassageError, find_fragment, locate, preview)
from specc.upstream.source import latex_plain
from specc.upstream.tree import SpecTree

MAX_LINE = 79
# Text that attaches to the word before it without a space.
_ATTACHES = re.compile(r"^[,.;:)!?]")


class AmendError(Exception):
    """An amendment that cannot be applied to the tree (position, message, candidates)."""

    def __init__(self, pos: SourcePos | None, message: str, candidates: list[str] | None = None,
                 width: int = 1) -> None:
        super().__init__(f"{pos}: {message}" if pos else message)
        self.pos = pos
        self.message = message
        self.candidates = candidates or []
        self.width = width

    def hint(self) -> str | None:
        if not self.candidates:
            return None
        return "candidates:\n" + "\n".join(f"    {c}" for c in self.candidates)


@dataclass(frozen=True)
class Applied:
    """An amendment resolved against a tree."""
    amendment: Amendment
    passage: Passage
    new_latex: str                  # the passage's LaTeX after the edits
    old_plain: str
    new_plain: str


def _edit_latex(e: TextEdit, idx: RefIndex) -> str:
    return latex_prose(e.new, idx) if e.new is not None else ""


def _rewrap(old: str, new: str) -> str:
    """Refill new lines that have grown too long; lines upstream wrote stay as they are."""
    kept = set(old.split("\n"))
    out = []
    for line in new.split("\n"):
        if line not in kept and len(line) > MAX_LINE:
            indent = line[:len(line) - len(line.lstrip())]
            out.append(wrap(line.strip(), indent=indent, width=MAX_LINE))
        else:
            out.append(line)
    return "\n".join(out)


def edit_passage(text: str, edits: tuple[TextEdit, ...], idx: RefIndex) -> str:
    """The passage's LaTeX with every edit applied; each fragment must occur once in it."""
    spans: list[tuple[int, int, str, TextEdit]] = []
    for e in edits:
        hits = find_fragment(text, e.fragment)
        if not hits:
            raise AmendError(e.pos, f"the amended passage does not contain '{e.fragment}'",
                             [preview(text, 40)], width=len(e.fragment) + 2)
        if len(hits) > 1:
            raise AmendError(e.pos, f"'{e.fragment}' occurs {len(hits)} times in the amended "
                             "passage: quote more words", [preview(text, 40)],
                             width=len(e.fragment) + 2)
        s, t = hits[0]
        new = _edit_latex(e, idx)
        if e.op == "replace":
            spans.append((s, t, new, e))
        elif e.op == "insert-after":
            spans.append((t, t, new if _ATTACHES.match(new) else " " + new, e))
        elif e.op == "insert-before":
            spans.append((s, s, new + " ", e))
        else:   # delete, with one neighbouring space so no double space is left
            if t < len(text) and text[t] == " ":
                t += 1
            elif s > 0 and text[s - 1] == " ":
                s -= 1
            spans.append((s, t, "", e))
    spans.sort(key=lambda x: (x[0], x[1]))
    for (a, b, _, e1), (c, d, _, e2) in zip(spans, spans[1:]):
        if c < b or (a == b == c == d):
            raise AmendError(e2.pos, f"this edit overlaps the edit at line {e1.pos.line if e1.pos else '?'}")
    out = text
    for s, t, new, _ in reversed(spans):
        out = out[:s] + new + out[t:]
    return _rewrap(text, out)


def apply_amendment(tree: SpecTree, a: Amendment, idx: RefIndex) -> Applied:
    try:
        passage = locate(tree, a.where if a.where.startswith(("sec:", "drivernormative:",
                                                              "devicenormative:")) else a.label,
                         a.unit, a.at)
    except PassageError as exc:
        on_at = "contains" in exc.message or "quote more" in exc.message
        pos = a.at_pos if on_at else a.where_pos
        width = len(a.at if on_at else a.where) + 2
        raise AmendError(pos, exc.message, exc.candidates, width) from None
    new = edit_passage(passage.text, a.edits, idx)
    return Applied(a, passage, new, latex_plain(passage.text), latex_plain(new))


_TOKEN = re.compile(r"\w+|[^\w\s]|\s+")


def word_diff(old: str, new: str) -> list[tuple[str, str]]:
    """Runs of ("same" | "del" | "ins", text) turning old into new, word by word
    (punctuation counts as a word of its own, so "memory." to "memory," changes
    only the full stop)."""
    a = [" " if t.isspace() else t for t in _TOKEN.findall(" ".join(old.split()))]
    b = [" " if t.isspace() else t for t in _TOKEN.findall(" ".join(new.split()))]
    out: list[tuple[str, str]] = []

    def add(kind: str, text: str) -> None:
        if not text:
            return
        if out and out[-1][0] == kind:
            out[-1] = (kind, out[-1][1] + text)
        else:
            out.append((kind, text))
    for op, i1, i2, j1, j2 in difflib.SequenceMatcher(None, a, b, autojunk=False).get_opcodes():
        if op == "equal":
            add("same", "".join(a[i1:i2]))
        if op in ("delete", "replace"):
            add("del", "".join(a[i1:i2]))
        if op in ("insert", "replace"):
            add("ins", "".join(b[j1:j2]))
    return out
