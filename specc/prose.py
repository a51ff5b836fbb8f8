"""Turn a prose token (triple-quoted or one-line) into Prose: text pieces with
whitespace collapsed, and inline references ``@kind(target)`` split out with
their own source positions.  ``@@`` is a literal ``@``; an ``@`` not
followed by a word is literal too, so e-mail addresses need no escaping.
"""
from __future__ import annotations

import bisect
import re

from specc.diagnostics import Diagnostic, error
from specc.model import REF_KINDS, Prose, Ref, SourcePos, Text, Word

_REF = re.compile(r"@@|@([A-Za-z_]+)(\(([^()\n]*)\))?")
_WS = re.compile(r"\s+")
# RFC 2119 words (and lower-case slips of them) and feature names, recorded
# with positions so checks can point at the exact word.
_WORDS = re.compile(r"\b(MUST\s+NOT|SHOULD\s+NOT|SHALL\s+NOT|MUST|SHOULD|SHALL|MAY|REQUIRED|"
                    r"RECOMMENDED|OPTIONAL|[Mm]ust\s+not|[Ss]hould\s+not|[Mm]ust|[Ss]hould|"
                    r"[Ss]hall|[Mm]ay|VIRTIO_(?:[A-Z0-9]+_)?F_[A-Z0-9_]*[A-Z0-9])\b")
_PARA_BREAK = re.compile(r"\n[ \t]*\n\s*")


class _Locator:
    """Maps an offset inside a token's text to a SourcePos."""

    def __init__(self, value: str, file: str, line: int, col: int):
        self.file, self.line, self.col = file, line, col
        self.newlines = [i for i, ch in enumerate(value) if ch == "\n"]

    def pos(self, offset: int) -> SourcePos:
        k = bisect.bisect_left(self.newlines, offset)
        if k == 0:
            return SourcePos(self.file, self.line, self.col + offset)
        return SourcePos(self.file, self.line + k, offset - self.newlines[k - 1])


def token_prose(value: str, file: str, line: int, col: int, diags: list[Diagnostic],
                split_paragraphs: bool = False) -> list[Prose]:
    """Prose from a TEXT or STRING token's raw value (quotes included)."""
    quote = 3 if value.startswith('"""') else 1
    body_start, body_end = quote, len(value) - quote
    loc = _Locator(value, file, line, col)
    spans: list[tuple[int, int]] = []
    if split_paragraphs:
        start = body_start
        for m in _PARA_BREAK.finditer(value, body_start, body_end):
            spans.append((start, m.start()))
            start = m.end()
        spans.append((start, body_end))
    else:
        spans.append((body_start, body_end))
    result = []
    for s, e in spans:
        if value[s:e].strip():
            result.append(_prose(value, s, e, loc, diags))
    if not result:
        result.append(Prose((), loc.pos(0)))
    return result


def _prose(value: str, start: int, end: int, loc: _Locator, diags: list[Diagnostic]) -> Prose:
    pieces: list = []
    buf: list[str] = []
    words: list[Word] = []

    def scan(a: int, b: int) -> None:
        for w in _WORDS.finditer(value, a, b):
            words.append(Word(_WS.sub(" ", w.group(1)), loc.pos(w.start())))
    first = start + (len(value[start:end]) - len(value[start:end].lstrip()))

    def flush() -> None:
        if buf:
            pieces.append("".join(buf))
            buf.clear()

    pos = start
    for m in _REF.finditer(value, start, end):
        scan(pos, m.start())
        buf.append(value[pos:m.start()])
        pos = m.end()
        if m.group(0) == "@@":
            buf.append("@")
            continue
        kind, paren, target = m.group(1), m.group(2), m.group(3)
        where = loc.pos(m.start())
        if kind not in REF_KINDS:
            if paren is None:
                buf.append(m.group(0))   # a literal '@word', e.g. in an address
                continue
            diags.append(error(f"unknown reference kind '@{kind}'", where,
                               hint="references are @feature(...), @field(...), "
                                    "@section(...) or @req(...); write @@ for a literal @",
                               width=len(kind) + 1))
            buf.append(m.group(0))
            continue
        if paren is None:
            diags.append(error(f"'@{kind}' needs a target in parentheses", where,
                               hint=f"write @{kind}(NAME); write @@ for a literal @",
                               width=len(kind) + 1))
            buf.append(m.group(0))
            continue
        target = _WS.sub(" ", target).strip()
        if not target:
            diags.append(error(f"empty @{kind}() reference", where, width=len(m.group(0))))
            continue
        flush()
        pieces.append(Ref(kind, target, where))
    scan(pos, end)
    buf.append(value[pos:end])
    flush()
    # collapse whitespace; trim the outer ends of the whole prose only
    out: list = []
    for i, p in enumerate(pieces):
        if isinstance(p, str):
            t = _WS.sub(" ", p)
            if i == 0:
                t = t.lstrip()
            if i == len(pieces) - 1:
                t = t.rstrip()
            if t:
                out.append(Text(t))
        else:
            out.append(p)
    return Prose(tuple(out), loc.pos(first), tuple(words))


def normalise(text: str) -> str:
    return _WS.sub(" ", text).strip()


_LEADING_IF = re.compile(r"^(?:if|when)\s+", re.I)


def with_condition(condition: Prose | None, text: Prose) -> Prose:
    """The statement as one English sentence: "If <condition>, <text>".

    A condition written with its own "if"/"when" loses it, and a text that
    starts with "If ..." joins the condition with "and", so the sentence
    never reads "If X has been negotiated, if the driver ..."."""
    if condition is None or not condition.pieces:
        return text
    cond = list(condition.pieces)
    if isinstance(cond[0], Text):
        cond[0] = Text(_LEADING_IF.sub("", cond[0].text))
    body = list(text.pieces)
    joiner = ", "
    if body and isinstance(body[0], Text) and _LEADING_IF.match(body[0].text):
        body[0] = Text(_LEADING_IF.sub("", body[0].text))
        joiner = " and "
    elif body and isinstance(body[0], Text):
        body[0] = Text(_lower_first(body[0].text))
    return Prose(tuple([Text("If ")] + cond + [Text(joiner)] + body), text.pos, text.words)


def _lower_first(text: str) -> str:
    # "The driver MUST" reads "the driver MUST" after "If X,"; names such as
    # VIRTIO_F_VERSION_1 or PCI keep their case.
    m = re.match(r"([A-Z])([a-z]\w*)", text)
    return m.group(1).lower() + text[1:] if m else text
