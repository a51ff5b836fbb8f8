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


class Log:
    """Violations and counts of one device lifetime (one connection)."""

    def __init__(self) -> None:
        self.violations: list[Violation] = []
        self.dropped: dict[str, int] = {}
        self.queues: dict[int, QueueCounts] = {}
        self.notes: list[str] = []

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
