"""What a checking device records: violations with their evidence, and
plain observations (counts) that show what was exercised."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

# The most violations of one property kept per device: a broken driver
# repeats its mistake on every request, and the first ones are the evidence.
KEEP_PER_PROPERTY = 20


@dataclass
class Violation:
    property: str              # expectation key, as the vectors spell it (see requirements.py)
    detail: str                # one line: what the driver did
    evidence: dict[str, Any] = field(default_factory=dict)   # queue, descriptor index, values
    level: str = "must"        # must, or should (a SHOULD-level property)
    requirements: list[str] = field(default_factory=list)    # filled from the vectors

    def to_json(self) -> dict:
        return asdict(self)


@dataclass
class QueueCounts:
    chains: int = 0
    descriptors: int = 0
    indirect_chains: int = 0
    longest_chain: int = 0
    kicks: int = 0
    kicks_while_suppressed: int = 0
    compared: int = 0          # chains whose descriptors were compared again before use


@dataclass
class AddressLog:
    """Every guest range the driver gave the device (ring areas, indirect
    tables, buffers), kept as merged extents, judged against ``region``."""
    region: tuple[int, int] | None          # base, size
    ranges: int = 0                         # ranges given
    bytes: int = 0                          # their lengths added up
    outside: int = 0                        # ranges not wholly inside region
    first_outside: dict[str, Any] | None = None
    data_bytes: int = 0                     # blk: bytes the requests read or wrote
    _spans: list[tuple[int, int]] = field(default_factory=list)

    def add(self, addr: int, length: int, what: str) -> None:
        self.ranges += 1
        self.bytes += length
        if self.region is not None:
            base, size = self.region
            if not (base <= addr and addr + length <= base + size):
                self.outside += 1
                if self.first_outside is None:
                    self.first_outside = {"addr": hex(addr), "len": length, "what": what}
        self._spans.append((addr, addr + length))
        if len(self._spans) > 4096:
            self._spans = self.extents()

    def extents(self) -> list[tuple[int, int]]:
        """The union of every range given, as sorted [start, end) pairs."""
        merged: list[tuple[int, int]] = []
        for lo, hi in sorted(self._spans):
            if merged and lo <= merged[-1][1]:
                merged[-1] = (merged[-1][0], max(merged[-1][1], hi))
            else:
                merged.append((lo, hi))
        return merged

    def to_json(self) -> dict:
        ext = self.extents()
        return {"region": None if self.region is None else [hex(v) for v in self.region],
                "ranges": self.ranges, "bytes": self.bytes, "outside": self.outside,
                "data_bytes": self.data_bytes,
                "first_outside": self.first_outside,
                "lowest": hex(ext[0][0]) if ext else None,
                "highest_end": hex(ext[-1][1]) if ext else None,
                "footprint": sum(hi - lo for lo, hi in ext),
                "extents": [[hex(lo), hex(hi)] for lo, hi in ext[:200]],
                "extents_total": len(ext)}


class Log:
    """Violations and counts of one device lifetime (one connection)."""

    def __init__(self) -> None:
        self.violations: list[Violation] = []
        self.dropped: dict[str, int] = {}
        self.queues: dict[int, QueueCounts] = {}
        self.notes: list[str] = []
        self.addresses: AddressLog | None = None   # kept for a device behind a pool

    def addresses_against(self, region) -> AddressLog:
        """The address record (started on first use), judged against ``region``."""
        if self.addresses is None:
            self.addresses = AddressLog(None if region is None else (region.base, region.size))
        return self.addresses

    def add(self, prop: str, detail: str, level: str = "must", **evidence: Any) -> None:
        same = sum(1 for v in self.violations if v.property == prop)
        if same >= KEEP_PER_PROPERTY:
            self.dropped[prop] = self.dropped.get(prop, 0) + 1
            return
        self.violations.append(Violation(prop, detail, dict(evidence), level))

    def note(self, text: str) -> None:
        if text not in self.notes and len(self.notes) < 50:
            self.notes.append(text)

    def queue(self, index: int) -> QueueCounts:
        return self.queues.setdefault(index, QueueCounts())

    def has(self, prop: str) -> bool:
        return any(v.property == prop for v in self.violations)

    def of(self, prop: str) -> list[Violation]:
        return [v for v in self.violations if v.property == prop]
