"""Requirement coverage, both ways: every statement and what exercised it,
and every vector and whether its statement still exists."""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from conformance.vectors import Requirement, Suite
from conformance.verdicts import TestResult, Verdict, worst

KEYWORD_FAMILY = {"MUST": "MUST", "MUST NOT": "MUST", "REQUIRED": "MUST",
                  "SHOULD": "SHOULD", "SHOULD NOT": "SHOULD", "RECOMMENDED": "SHOULD",
                  "MAY": "MAY", "OPTIONAL": "MAY"}


@dataclass
class StatementCoverage:
    requirement: Requirement
    results: list[TestResult] = field(default_factory=list)
    vectors: int = 0                  # tests in the suite that name it

    @property
    def verdict(self) -> Verdict | None:
        """The worst verdict among tests that ran (SKIP only if nothing else)."""
        return worst(r.verdict for r in self.results)

    @property
    def status(self) -> str:
        r = self.requirement
        if not r.testable:
            return "untestable"
        if not self.vectors:
            return "no vectors"
        ran = [x for x in self.results if x.verdict is not Verdict.SKIP]
        if ran:
            return "exercised"
        if any(x.outdated for x in self.results):
            return "outdated"
        return "not exercised" if self.results else "not selected"


@dataclass
class Coverage:
    statements: dict[str, StatementCoverage]
    missing_must: list[str]                 # testable MUST / MUST NOT without a vector
    orphans: list[tuple[str, str]]          # (test key, requirement id that no longer exists)
    outdated: list[tuple[str, str]]         # (test key, reason)
    untestable: list[tuple[str, str]]       # (requirement id, reason)

    def by_clause(self) -> dict[str, dict[str, list[StatementCoverage]]]:
        """clause -> normative block label -> statements (sorted)."""
        out: dict[str, dict[str, list[StatementCoverage]]] = {}
        for sc in sorted(self.statements.values(), key=lambda s: s.requirement.id):
            r = sc.requirement
            out.setdefault(r.conformance_clause, {}).setdefault(r.label, []).append(sc)
        return dict(sorted(out.items()))

    def by_keyword(self) -> dict[str, dict[str, int]]:
        """MUST / SHOULD / MAY -> counts of statements by what happened to them."""
        out: dict[str, Counter] = {k: Counter() for k in ("MUST", "SHOULD", "MAY")}
        for sc in self.statements.values():
            fam = KEYWORD_FAMILY.get(sc.requirement.keyword, sc.requirement.keyword)
            c = out.setdefault(fam, Counter())
            c["statements"] += 1
            c[sc.status] += 1
            v = sc.verdict
            if v is not None and sc.status == "exercised":
                c[v.value] += 1
        return {k: dict(v) for k, v in out.items()}


def compute(suite: Suite, results: list[TestResult],
            current: dict[str, Requirement] | None = None) -> Coverage:
    reqs = current if current is not None else suite.requirements()
    stmts = {rid: StatementCoverage(r) for rid, r in reqs.items()}
    renamed = {a: rid for rid, r in reqs.items() for a in r.aliases}
    orphans = []
    for t in suite.tests():
        sc = stmts.get(t.requirement) or stmts.get(renamed.get(t.requirement, ""))
        if sc is None:
            orphans.append((t.key, t.requirement))
        else:
            sc.vectors += 1
    for r in results:
        sc = stmts.get(r.requirement) or stmts.get(renamed.get(r.requirement, ""))
        if sc is not None:
            sc.results.append(r)
    missing = sorted(rid for rid, sc in stmts.items()
                     if sc.requirement.testable and not sc.vectors
                     and KEYWORD_FAMILY.get(sc.requirement.keyword) == "MUST")
    outdated = [(r.key, r.reason) for r in results if r.outdated]
    untestable = sorted((rid, sc.requirement.untestable_reason or "(no reason given)")
                        for rid, sc in stmts.items() if not sc.requirement.testable)
    return Coverage(stmts, missing, sorted(set(orphans)), outdated, untestable)
