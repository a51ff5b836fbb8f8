"""Progress while running: a bar on a terminal, a line per module otherwise."""
from __future__ import annotations

import io

from conformance.report.progress import Progress
from conformance.verdicts import TestResult as Result
from conformance.verdicts import Verdict


def _r(module: str, verdict: Verdict, layout: str = "split") -> Result:
    return Result(key=f"{module}:x", module=module, tc_id=1, check_id="x", requirement="r",
                      keyword="MUST", label="", clause="", result="valid", verdict=verdict,
                      reason="because", layout=layout)


RESULTS = [_r("a", Verdict.PASS), _r("a", Verdict.SKIP), _r("b", Verdict.FAIL),
           _r("b", Verdict.PASS)]


def _feed(p: Progress) -> None:
    for n, r in enumerate(RESULTS, 1):
        p(n, len(RESULTS), r)


def test_a_line_per_module_when_not_on_a_terminal():
    out = io.StringIO()
    _feed(Progress(out, live=False))
    lines = out.getvalue().splitlines()
    assert [x.split(":")[0] for x in lines] == ["split a", "split b"]
    assert "2 tests, 1 PASS, 1 SKIP" in lines[0] and "1 PASS, 1 FAIL" in lines[1]


def test_quiet_prints_nothing_and_verbose_names_each_failure():
    out = io.StringIO()
    _feed(Progress(out, verbosity=-1, live=False))
    assert out.getvalue() == ""
    _feed(Progress(out, verbosity=1, live=False))
    assert "FAIL split b:x: because" in out.getvalue()


def test_a_bar_on_a_terminal():
    out = io.StringIO()
    _feed(Progress(out, live=True))
    text = out.getvalue()
    assert "split:" in text and "/4 [" in text and "test/s" in text
    assert text.endswith("\r")         # the bar is cleared when the layout is done
