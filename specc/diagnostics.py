"""Compiler-style diagnostics: ``path:line:col: error: message``, the source
line, a caret under the column and an optional hint."""
from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Iterable, Mapping

from specc.model import SourcePos

ERROR = "error"
WARNING = "warning"


@dataclass(frozen=True)
class Diagnostic:
    severity: str                   # error or warning
    message: str
    pos: SourcePos | None = None
    hint: str | None = None
    file: str | None = None         # for diagnostics about a whole file (no position)
    width: int = 1                  # caret width

    @property
    def is_error(self) -> bool:
        return self.severity == ERROR

    def where(self) -> str:
        if self.pos is not None:
            return str(self.pos)
        return self.file or "specc"

    def render(self, sources: Mapping[str, str] | None = None) -> str:
        """Render as text; sources maps file names to their decoded text."""
        out = [f"{self.where()}: {self.severity}: {self.message}"]
        if self.pos is not None and sources is not None:
            text = sources.get(self.pos.file)
            if text is not None:
                line = _line(text, self.pos.line)
                if line is not None:
                    shown = line.expandtabs(1).rstrip("\r")
                    col = max(self.pos.col, 1)
                    # a long line is shown as a window around the column
                    start = max(0, col - 1 - SHOWN_COLUMNS // 2)
                    shown = shown[start:start + SHOWN_COLUMNS]
                    col -= start
                    out.append("    " + shown)
                    width = max(1, min(self.width, len(shown) - col + 1))
                    out.append("    " + " " * (col - 1) + "^" + "~" * (width - 1))
        if self.hint:
            out.append(f"  hint: {self.hint}")
        return "\n".join(out)

    def sort_key(self) -> tuple:
        p = self.pos
        return (p.file if p else (self.file or ""), p.line if p else 0, p.col if p else 0,
                self.message)


SHOWN_COLUMNS = 160


@lru_cache(maxsize=8)
def _line_starts(text: str) -> tuple[int, ...]:
    # cached per source text, so rendering many diagnostics stays linear
    return (0,) + tuple(m.end() for m in re.finditer("\n", text))


def _line(text: str, lineno: int) -> str | None:
    starts = _line_starts(text)
    if not 1 <= lineno <= len(starts):
        return None
    start = starts[lineno - 1]
    end = text.find("\n", start)
    return text[start:] if end < 0 else text[start:end]


def error(message: str, pos: SourcePos | None = None, hint: str | None = None,
          width: int = 1, file: str | None = None) -> Diagnostic:
    return Diagnostic(ERROR, message, pos, hint, file, width)


def warning(message: str, pos: SourcePos | None = None, hint: str | None = None,
            width: int = 1, file: str | None = None) -> Diagnostic:
    return Diagnostic(WARNING, message, pos, hint, file, width)


def render_all(diags: Iterable[Diagnostic], sources: Mapping[str, str]) -> str:
    return "\n".join(d.render(sources) for d in sorted(diags, key=Diagnostic.sort_key))


class SpecError(Exception):
    """Raised by parse_file/parse_text when the input cannot become a Module."""

    def __init__(self, diagnostics: list[Diagnostic]):
        super().__init__(diagnostics[0].message if diagnostics else "invalid input")
        self.diagnostics = diagnostics
