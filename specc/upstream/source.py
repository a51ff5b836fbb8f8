"""One LaTeX source file as the reader sees it: comments and verbatim blanked,
offsets mapped back to (line, column), and brace arguments read in place.

Blanking keeps every character's offset, so a position found in the masked
text is the position of the same character in the file the author edits.
"""
from __future__ import annotations

import bisect
import re
from dataclasses import dataclass, field
from functools import lru_cache

# Environments whose body TeX does not read as commands: '%' is no comment
# there and '\section' is just text.
VERBATIM_ENVS = ("lstlisting", "verbatim", "Verbatim", "comment")

_VERB_BEGIN = re.compile(r"\\begin\{(" + "|".join(VERBATIM_ENVS) + r")\}")


@dataclass(frozen=True, order=True)
class Position:
    """A place in the tree: file relative to the tree root, 1-based line and column."""
    file: str
    line: int
    col: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.col}"


@dataclass
class SourceText:
    """The text of one .tex file plus its masked twin (same length)."""
    name: str
    text: str
    masked: str = ""
    line_starts: list[int] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.masked:
            self.masked = mask(self.text)
        self.line_starts = [0] + [m.end() for m in re.finditer("\n", self.text)]

    def position(self, offset: int) -> Position:
        i = bisect.bisect_right(self.line_starts, offset) - 1
        return Position(self.name, i + 1, offset - self.line_starts[i] + 1)


def _comment_start(line: str) -> int:
    """Index of the '%' that starts a comment in this line, or -1.

    A '%' is escaped when an odd number of backslashes precede it."""
    start = 0
    while True:
        i = line.find("%", start)
        if i < 0:
            return -1
        j = i
        while j > 0 and line[j - 1] == "\\":
            j -= 1
        if (i - j) % 2 == 0:
            return i
        start = i + 1


def mask(text: str) -> str:
    """Blank comments and verbatim bodies with spaces, keeping newlines and offsets."""
    out: list[str] = []
    verbatim: str | None = None
    for line in text.splitlines(keepends=True):
        body = line.rstrip("\r\n")
        ending = line[len(body):]
        if verbatim is not None:
            end_tag = "\\end{" + verbatim + "}"
            k = body.find(end_tag)
            if k < 0:
                out.append(" " * len(body) + ending)
                continue
            verbatim = None
            head, body = " " * k, body[k:]
        else:
            head = ""
        c = _comment_start(body)
        if c >= 0:
            body = body[:c] + " " * (len(body) - c)
        m = _VERB_BEGIN.search(body)
        if m:
            # The rest of the line after \begin{lstlisting}[...] is verbatim too;
            # keep an optional argument on the same line visible.
            rest = m.end()
            if rest < len(body) and body[rest] == "[":
                close = body.find("]", rest)
                rest = close + 1 if close >= 0 else len(body)
            end_tag = "\\end{" + m.group(1) + "}"
            k = body.find(end_tag, rest)
            if k >= 0:
                body = body[:rest] + " " * (k - rest) + body[k:]
            else:
                body = body[:rest] + " " * (len(body) - rest)
                verbatim = m.group(1)
        out.append(head + body + ending)
    return "".join(out)


_WS = re.compile(r"[ \t\r\n]+")
# A backslash and the character it escapes, or a brace.
_BRACE_OR_ESCAPE = re.compile(r"\\.|[{}]", re.S)
# Longer than any optional argument upstream (list item labels, listing options).
MAX_OPTIONAL = 4096


def normalise_space(s: str) -> str:
    """Whitespace as TeX reads it inside an argument: every run becomes one space.

    Leading and trailing spaces inside the braces are kept (TeX keeps them too,
    so `\\label{a }` and `\\ref{a}` do not match)."""
    return _WS.sub(" ", s)


def skip_space(masked: str, i: int) -> int:
    n = len(masked)
    while i < n and masked[i] in " \t\r\n":
        i += 1
    return i


@lru_cache(maxsize=8)
def _brace_pairs(masked: str) -> dict[int, int]:
    """Every balanced '{' of a file mapped to its '}', found in one pass.

    Scanning forward from each brace instead made a file full of unclosed
    groups quadratic (a 5 MB line took a minute); the pairs are the same,
    since a group's end depends only on the text after its opening brace."""
    pairs: dict[int, int] = {}
    open_at: list[int] = []
    for m in _BRACE_OR_ESCAPE.finditer(masked):
        ch = m.group(0)
        if ch == "{":
            open_at.append(m.start())
        elif ch == "}":
            if open_at:
                pairs[open_at.pop()] = m.start()
    return pairs


def read_group(masked: str, i: int) -> tuple[int, int] | None:
    """If masked[i] opens a brace group, return (content start, content end); braces nest."""
    if i >= len(masked) or masked[i] != "{":
        return None
    j = _brace_pairs(masked).get(i)
    return None if j is None else (i + 1, j)


def read_optional(masked: str, i: int) -> tuple[int, int] | None:
    """An optional [argument] at i (after spaces), brace-aware.

    It ends at a paragraph break or after MAX_OPTIONAL characters, so text
    full of unclosed brackets is read in linear time."""
    if i >= len(masked) or masked[i] != "[":
        return None
    depth = 0
    j = i + 1
    n = min(len(masked), i + 1 + MAX_OPTIONAL)
    while j < n:
        ch = masked[j]
        if ch == "\\":
            j += 2
            continue
        if ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
        elif ch == "]" and depth == 0:
            return (i + 1, j)
        elif ch == "\n" and masked[j + 1:j + 2] == "\n":
            return None  # a paragraph break: not an argument
        j += 1
    return None


def read_args(masked: str, i: int, count: int) -> list[tuple[int, int]] | None:
    """Read `count` brace arguments starting at i, spaces allowed between them."""
    spans: list[tuple[int, int]] = []
    for _ in range(count):
        i = skip_space(masked, i)
        g = read_group(masked, i)
        if g is None:
            return None
        spans.append(g)
        i = g[1] + 1
    return spans


_MACRO = re.compile(r"\\[A-Za-z]+\*?|\\.")


def plain_title(tex: str) -> str:
    """A section title as text: macros dropped, their arguments kept, braces gone.

    `\\field{Device Status} Field` reads as `Device Status Field`, which is how
    upstream spells title paths in labels."""
    s = _MACRO.sub(lambda m: {"\\_": "_", "\\&": "&", "\\%": "%", "\\#": "#",
                              "\\-": "", "\\\\": " "}.get(m.group(0), ""), tex)
    s = s.replace("{", "").replace("}", "").replace("~", " ")
    return " ".join(s.split())


def latex_plain(tex: str) -> str:
    """Upstream LaTeX as a reader sees the words: references by their target's title."""
    s = re.sub(r"\\ref\{[^{}]*\}~?\\nameref\{(?:sec:)?([^{}]*)\}",
               lambda m: m.group(1).split(" / ")[-1], tex)
    s = re.sub(r"\\hyperref\[[^\]]*\]\{([^{}]*)\}", r"\1", s)
    s = re.sub(r"\\ref\{(?:[a-z]+:)?([^{}]*)\}", lambda m: m.group(1).split(" / ")[-1], s)
    s = s.replace("``", "\u201c").replace("''", "\u201d")
    return plain_title(s)
