"""The keyword statements of an upstream normative block, and the one a
citation picks out.

A block's own text (subsections excluded) is cut at blank lines, list
items, environment bounds and sentence ends; each piece that holds an RFC
2119 keyword the tree reader counted is one *keyword statement*, numbered
from 1 in document order. A citation names its statement by a short quoted
fragment (matched with whitespace normalised, against the LaTeX or the
plain words) or by that number. The statement's fingerprint hashes its
plain words, so a reworded sentence gets a new one and layout changes
(line breaks, indentation) do not.
"""
from __future__ import annotations

import difflib
import hashlib
import re
from dataclasses import dataclass

from specc.upstream.passages import find_fragment, own_end, preview
from specc.upstream.source import latex_plain
from specc.upstream.tree import SpecTree

MAX_CANDIDATES = 6

# Where one statement ends and the next begins.
_BOUNDARY = re.compile(r"\n[ \t]*\n\s*"                                  # a blank line
                       r"|\\item\b(?:\s*\[[^\]\n]*\])?"                  # a list item
                       r"|\\(?:begin|end)\{[^{}\n]*\}(?:\[[^\]\n]*\])?"  # environment bounds
                       r"|(?<=[.!?:])\s+(?=[A-Z\\])")                    # a sentence end
_LABEL = re.compile(r"\\label\{[^{}]*\}")


class CiteError(Exception):
    """A citation that picks out no statement, or several (message, candidates).

    `on` says which part of the citation is wrong: "where" (the label) or
    "at" (the fragment or index)."""

    def __init__(self, message: str, on: str, candidates: list[str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.on = on
        self.candidates = candidates or []


@dataclass(frozen=True)
class UpstreamStatement:
    """One keyword statement of an upstream normative block."""
    label: str
    index: int                      # 1-based among the block's keyword statements
    file: str
    line: int
    start: int                      # offsets in the file
    end: int
    latex: str
    keywords: tuple[str, ...]       # the RFC 2119 keywords it holds, in order

    @property
    def plain(self) -> str:
        """The words as a reader sees them (labels dropped, macros resolved)."""
        return " ".join(latex_plain(_LABEL.sub("", self.latex)).split())

    @property
    def fingerprint(self) -> str:
        return sentence_fingerprint(self.plain)

    @property
    def where(self) -> str:
        return f"{self.file}:{self.line}"


def sentence_fingerprint(plain: str) -> str:
    """First 12 hex digits of the SHA-256 of the sentence's words, whitespace folded."""
    return hashlib.sha256(" ".join(plain.split()).encode("utf-8")).hexdigest()[:12]


def _pieces(text: str, start: int, end: int) -> list[tuple[int, int]]:
    out = []
    cur = start
    for m in list(_BOUNDARY.finditer(text, start, end)) + [None]:
        a, b = (m.start(), m.end()) if m else (end, end)
        s, e = cur, a
        while s < e and text[s].isspace():
            s += 1
        while e > s and text[e - 1].isspace():
            e -= 1
        if s < e:
            out.append((s, e))
        cur = b
    return out


def block_statements(tree: SpecTree, label: str) -> list[UpstreamStatement]:
    """The keyword statements of the normative block `label`, in document order;
    a label the tree does not have is a CiteError."""
    block = tree.block_by_label(label)
    if block is None:
        near = difflib.get_close_matches(label, [b.label for b in tree.blocks], n=3, cutoff=0.6)
        raise CiteError(f"no normative block '{label}' in the tree", "where", near)
    sec = block.heading
    src = tree.sources[sec.file]
    start, end = sec.body_offset, own_end(sec)
    offsets = []
    for kw in block.keywords:
        if kw.pos.file == sec.file:
            off = src.line_starts[kw.pos.line - 1] + kw.pos.col - 1
            if start <= off < end:
                offsets.append((off, kw.word))
    out: list[UpstreamStatement] = []
    for s, e in _pieces(src.masked, start, end):
        kws = tuple(w for off, w in offsets if s <= off < e)
        if kws:
            out.append(UpstreamStatement(block.label, len(out) + 1, sec.file,
                                         src.position(s).line, s, e, src.text[s:e], kws))
    return out


def _describe(st: UpstreamStatement) -> str:
    return f"{st.where}: [{st.index}] {preview(st.plain)}"


def resolve(tree: SpecTree, label: str, at: str | None, index: int | None) -> UpstreamStatement:
    """The one keyword statement of block `label` that fragment `at` (or number
    `index`) picks out; otherwise a CiteError with the candidates."""
    sts = block_statements(tree, label)
    if index is not None:
        if not 1 <= index <= len(sts):
            raise CiteError(f"statement {index} is out of range: {label} has {len(sts)} keyword "
                            f"statement{'s' if len(sts) != 1 else ''}", "at",
                            [_describe(s) for s in sts[:MAX_CANDIDATES]])
        return sts[index - 1]
    frag = at or ""
    hits = [s for s in sts if find_fragment(s.latex, frag) or find_fragment(s.plain, frag)]
    if len(hits) == 1:
        return hits[0]
    if not hits:
        want = {w.lower() for w in re.findall(r"\w+", frag)}
        ranked = sorted(sts, key=lambda s: -len(want & {w.lower() for w in re.findall(r"\w+", s.plain)}))
        raise CiteError(f"no keyword statement of {label} contains '{frag}'", "at",
                        [_describe(s) for s in ranked[:MAX_CANDIDATES]])
    raise CiteError(f"'{frag}' is in {len(hits)} keyword statements of {label}: quote more words "
                    "or give the statement's number", "at",
                    [_describe(s) for s in hits[:MAX_CANDIDATES]])
