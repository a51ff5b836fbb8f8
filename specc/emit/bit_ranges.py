"""Read and write the feature-bit ranges of the allocation list in content.tex.

Upstream writes them as prose: "0 to 23, 41, 42 and 50 to 127",
"24 to 40, and 43", "44 to 49, and 128 and above". Moving a bit from one
item to another means parsing that prose, changing the sets, and writing it
back in the same style.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

_PART = re.compile(r"^(\d+)(?:\s+to\s+(\d+))?$")
_OPEN_TAIL = re.compile(r"(?:,?\s*and\s+)?(\d+)\s+and\s+above\s*$")


@dataclass(frozen=True)
class BitRanges:
    """A finite set of bits plus an optional open tail ("128 and above")."""
    bits: frozenset[int]
    open_from: int | None = None

    def __contains__(self, bit: int) -> bool:
        return bit in self.bits or (self.open_from is not None and bit >= self.open_from)

    def without(self, bit: int) -> "BitRanges":
        if bit in self.bits:
            return BitRanges(self.bits - {bit}, self.open_from)
        if self.open_from is not None and bit >= self.open_from:
            # taken from the open tail: the bits below it stay, the tail starts after it
            return BitRanges(self.bits | frozenset(range(self.open_from, bit)), bit + 1)
        raise ValueError(f"bit {bit} is not in {format_bit_ranges(self)}")

    def with_bit(self, bit: int) -> "BitRanges":
        return BitRanges(self.bits | {bit}, self.open_from)


def parse_bit_ranges(text: str) -> BitRanges:
    """Parse upstream allocation prose; raise ValueError if it is not in that form."""
    rest = " ".join(text.split())
    open_from = None
    tail = _OPEN_TAIL.search(rest)
    if tail:
        open_from = int(tail.group(1))
        rest = rest[:tail.start()].rstrip(", ")
    bits: set[int] = set()
    parts = [p.strip() for p in re.split(r",|\band\b", rest) if p.strip()]
    if not parts and open_from is None:
        raise ValueError(f"no feature bits in {text!r}")
    for part in parts:
        m = _PART.match(part)
        if not m:
            raise ValueError(f"cannot read {part!r} in feature bit range {text!r}")
        lo = int(m.group(1))
        hi = int(m.group(2) or lo)
        if hi < lo:
            raise ValueError(f"range {part!r} runs backwards in {text!r}")
        bits.update(range(lo, hi + 1))
    return BitRanges(frozenset(bits), open_from)


def _runs(bits: frozenset[int]) -> list[tuple[int, int]]:
    runs: list[tuple[int, int]] = []
    for b in sorted(bits):
        if runs and runs[-1][1] == b - 1:
            runs[-1] = (runs[-1][0], b)
        else:
            runs.append((b, b))
    return runs


def format_bit_ranges(ranges: BitRanges) -> str:
    """Write bits in upstream style: runs of three or more as "a to b"."""
    parts: list[str] = []
    for lo, hi in _runs(ranges.bits):
        if hi - lo >= 2:
            parts.append(f"{lo} to {hi}")
        else:
            parts.extend(str(b) for b in range(lo, hi + 1))
    if ranges.open_from is not None:
        tail = f"{ranges.open_from} and above"
        return f"{', '.join(parts)}, and {tail}" if parts else tail
    if len(parts) == 1:
        return parts[0]
    return f"{', '.join(parts[:-1])} and {parts[-1]}"
