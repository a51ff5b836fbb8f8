"""Sizes and guest-physical regions as people type them on a command line:
``4096``, ``0x1000``, ``8M``, ``0x100000000:8M``.

One parser for every command that takes them (``serve --size/--bounce``,
``probe --bounce``), so the same text means the same bytes everywhere."""
from __future__ import annotations

_UNITS = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}


def parse_size(text: str) -> int:
    """A whole number in any base ``int(x, 0)`` reads, with an optional K, M
    or G suffix (binary units); ValueError with a one-line reason otherwise."""
    t = text.strip().upper()
    try:
        if t and t[-1] in _UNITS:
            return int(t[:-1], 0) * _UNITS[t[-1]]
        return int(t, 0)
    except ValueError:
        raise ValueError(f"not a size: {text!r}") from None


def parse_region(text: str) -> tuple[int, int]:
    """``BASE:SIZE``, each a size as ``parse_size`` reads it."""
    base, sep, size = text.partition(":")
    if not sep:
        raise ValueError("expected BASE:SIZE, e.g. 0x100000000:8M")
    return parse_size(base), parse_size(size)
