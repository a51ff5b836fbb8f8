"""Verdicts and the evidence each one carries (design.md, "Verdicts")."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from enum import Enum
from typing import Any


class Verdict(str, Enum):
    PASS = "PASS"          # behaved as required
    FAIL = "FAIL"          # did something the spec forbids
    REJECT = "REJECT"      # refused invalid input safely and stayed usable
    WEDGED = "WEDGED"      # stopped working: no progress, NEEDS_RESET, or died
    SKIP = "SKIP"          # precondition not met (the reason says which)

    def __str__(self) -> str:
        return self.value


BAD = (Verdict.FAIL, Verdict.WEDGED)
# Order used when one requirement has several verdicts: the worst one shows.
SEVERITY = [Verdict.WEDGED, Verdict.FAIL, Verdict.REJECT, Verdict.PASS, Verdict.SKIP]


def worst(verdicts) -> Verdict | None:
    vs = set(verdicts)
    for v in SEVERITY:
        if v in vs:
            return v
    return None


@dataclass
class Evidence:
    """What was seen: the step that decided the verdict and its comparison."""
    step: str = ""              # the step as written, e.g. "expect used_len > 0"
    step_index: int | None = None
    source: str = ""            # spec source position of the step
    expected: str = ""
    observed: str = ""
    critical: bool = False      # touched memory outside SWIOTLB / released unauthenticated data
    notes: list[str] = field(default_factory=list)
    # For the verdict policy, not the reports: whether the device had gone
    # (connection closed, process exited), why the rule was not reached, and
    # what the test observed (conformance/conditions.py).
    device_gone: bool = False
    not_reached: str = ""
    observations: Any = None


@dataclass
class TestResult:
    key: str                    # module:checkId
    module: str
    tc_id: int
    check_id: str
    requirement: str
    keyword: str
    label: str
    clause: str
    result: str                 # the vector's expected result: valid, invalid, acceptable
    verdict: Verdict
    reason: str                 # one line
    evidence: Evidence = field(default_factory=Evidence)
    layout: str = ""
    seconds: float = 0.0
    expected_failure: bool = False
    # The vector no longer matches its statement: reported OUTDATED, not run
    # (its verdict is SKIP, so readers that know only the five verdicts cope).
    outdated: bool = False

    @property
    def shown(self) -> str:
        """The verdict as the reports print it."""
        return "OUTDATED" if self.outdated else self.verdict.value

    def to_json(self) -> dict:
        d = asdict(self)
        d["verdict"] = self.verdict.value
        for k in ("device_gone", "not_reached", "observations"):
            d["evidence"].pop(k, None)
        return {_camel(k): (_camel_keys(v) if isinstance(v, dict) else v) for k, v in d.items()}


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(w.title() for w in rest)


def _camel_keys(d: dict) -> dict:
    return {_camel(k): v for k, v in d.items()}
