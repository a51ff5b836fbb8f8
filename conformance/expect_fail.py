"""Known failures of one implementation, so CI can gate on regressions.

The file lists requirement ids, one per line; ``#`` starts a comment. A
listed requirement whose tests FAIL or WEDGE is an expected failure (it
does not make the run fail); one whose tests now all pass is reported
loudly and fails the run, so the list is kept honest.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from conformance.verdicts import BAD, TestResult, Verdict

_ID = re.compile(r"^[A-Za-z][A-Za-z0-9_.:-]*$")


class ExpectFailError(ValueError):
    pass


def read(path: str | Path) -> dict[str, str]:
    """requirement id -> comment. Raises ExpectFailError on a bad line."""
    p = Path(path)
    try:
        lines = p.read_text("utf-8").splitlines()
    except OSError as exc:
        raise ExpectFailError(f"{p}: cannot read: {exc.strerror}") from None
    out: dict[str, str] = {}
    for n, line in enumerate(lines, 1):
        text, _, comment = line.partition("#")
        text = text.strip()
        if not text:
            continue
        if not _ID.match(text):
            raise ExpectFailError(f"{p}:{n}: {text!r} is not a requirement id")
        out[text] = comment.strip()
    return out


@dataclass
class ExpectFailOutcome:
    listed: dict[str, str] = field(default_factory=dict)
    expected: list[str] = field(default_factory=list)        # still failing, as listed
    now_passing: list[str] = field(default_factory=list)     # listed, but passed: loud
    not_run: list[str] = field(default_factory=list)         # listed, nothing ran

    @property
    def ok(self) -> bool:
        return not self.now_passing


def apply(listed: dict[str, str], results: list[TestResult]) -> ExpectFailOutcome:
    """Mark expected failures on ``results`` and judge the list."""
    out = ExpectFailOutcome(listed=dict(listed))
    by_req: dict[str, list[TestResult]] = {}
    for r in results:
        by_req.setdefault(r.requirement, []).append(r)
    for rid in sorted(listed):
        rs = by_req.get(rid, [])
        bad = [r for r in rs if r.verdict in BAD]
        good = [r for r in rs if r.verdict in (Verdict.PASS, Verdict.REJECT)]
        for r in bad:
            r.expected_failure = True
        if bad:
            out.expected.append(rid)
        elif good:
            out.now_passing.append(rid)
        else:
            out.not_run.append(rid)
    return out
