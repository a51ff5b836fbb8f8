"""A finished run as one object, and its writers (terminal, JSON, JUnit, HTML)."""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from conformance.coverage import Coverage, compute
from conformance.expect_fail import ExpectFailOutcome
from conformance.runner import RunResult
from conformance.vectors import Requirement, Suite
from conformance.verdicts import BAD, TestResult, Verdict

REPORT_FORMAT = "virtio-conformance-report"
REPORT_VERSION = 1


@dataclass
class Report:
    suite: Suite
    runs: list[RunResult]
    coverage: Coverage
    expect_fail: ExpectFailOutcome | None = None
    docs_url: str = ""
    meta: dict = field(default_factory=dict)

    @property
    def results(self) -> list[TestResult]:
        return [r for run in self.runs for r in run.results]

    def counts(self) -> Counter:
        return Counter(r.verdict.value for r in self.results)

    def unexpected_bad(self) -> list[TestResult]:
        return [r for r in self.results if r.verdict in BAD and not r.expected_failure]

    def critical(self) -> list[TestResult]:
        return [r for r in self.results if r.verdict in BAD and r.evidence.critical]

    @property
    def exit_status(self) -> int:
        if self.unexpected_bad():
            return 1
        if self.expect_fail is not None and not self.expect_fail.ok:
            return 1
        return 0

    @property
    def seconds(self) -> float:
        return sum(run.seconds for run in self.runs)


def build(suite: Suite, runs: list[RunResult], current: dict[str, Requirement] | None = None,
          expect_fail: ExpectFailOutcome | None = None, docs_url: str = "",
          meta: dict | None = None) -> Report:
    results = [r for run in runs for r in run.results]
    return Report(suite, runs, compute(suite, results, current), expect_fail, docs_url,
                  meta or {})


def requirement_verdicts(report: Report) -> dict[str, Verdict | None]:
    return {rid: sc.verdict for rid, sc in report.coverage.statements.items()}


__all__ = ["Report", "build", "REPORT_FORMAT", "REPORT_VERSION", "Verdict",
           "requirement_verdicts"]
