"""Run a suite of vectors through an adapter and give each test a verdict."""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable

from device_ref.transport import TransportError

from conformance.adapters.base import Adapter, AdapterError
from conformance.harness import Harness
from conformance.outcomes import Failed, Skipped, StepOutcome, Wedged
from conformance.vectors import Group, Requirement, Suite, Test
from conformance.verdicts import Evidence, TestResult, Verdict
from conformance.watchdog import Hung, guard

# Expectations whose failure means the device reached memory it must not,
# or released data it must not: reported CRITICAL.
CRITICAL_VERBS = {"memory_outside_region", "qenc_refused"}


# A step that has not returned after this long (plus its own timeouts) is
# taken as a hung device; generous, because a step may carry 100k requests.
HANG_GUARD_S = 60.0


@dataclass
class RunOptions:
    layout: str = "split"                 # split or packed
    step_timeout: float = 2.0             # seconds per waiting step
    hang_guard: float = HANG_GUARD_S      # seconds before a step that never returns is WEDGED
    only: tuple[str, ...] = ()            # requirement ids (or prefixes ending in '.' or '*')
    current: dict[str, Requirement] | None = None   # statements as the spec says today


@dataclass
class RunResult:
    results: list[TestResult] = field(default_factory=list)
    seconds: float = 0.0
    adapter: str = ""
    layout: str = ""
    device_log: str = ""


def selected(test: Test, only: tuple[str, ...]) -> bool:
    if not only:
        return True
    for pat in only:
        if pat.endswith("*") and test.requirement.startswith(pat[:-1]):
            return True
        if test.requirement == pat or test.check_id == pat or test.key == pat:
            return True
        if pat.endswith(".") and test.requirement.startswith(pat):
            return True
    return False


def _statement(test: Test, opts: RunOptions) -> tuple[Requirement | None, str | None]:
    """The statement a test checks, and why the test is stale (None: current)."""
    group = test.group
    own = group.file.requirements.get(test.requirement)
    ref = next((r for r in group.requirements if r.id == test.requirement), None)
    table = opts.current if opts.current is not None else group.file.requirements
    now = table.get(test.requirement) or by_alias(table).get(test.requirement)
    if now is None:
        return own, f"requirement {test.requirement} no longer exists"
    pinned = ref.fingerprint if ref is not None else (own.fingerprint if own else None)
    if pinned is not None and pinned != now.fingerprint:
        return now, (f"statement {test.requirement} changed since the vector was made "
                     f"(fingerprint {pinned} -> {now.fingerprint})")
    return now, None


def by_alias(table: dict[str, Requirement]) -> dict[str, Requirement]:
    """Old ids (aliases of renamed statements) -> the statement today."""
    return {a: r for r in table.values() for a in r.aliases}


def _result(test: Test, req: Requirement | None, verdict: Verdict, reason: str,
            evidence: Evidence, layout: str, seconds: float = 0.0) -> TestResult:
    return TestResult(
        key=test.key, module=test.group.file.module, tc_id=test.tc_id,
        check_id=test.check_id, requirement=test.requirement,
        keyword=req.keyword if req else "?", label=req.label if req else "",
        clause=req.conformance_clause if req else "", result=test.result, verdict=verdict,
        reason=reason, evidence=evidence, layout=layout, seconds=seconds)


def _group_skip(group: Group, adapter: Adapter) -> str | None:
    if group.target == "driver":
        return "driver under test: driver-mode vectors run through conformance/driver_mode.py"
    return None


def run_test(test: Test, adapter: Adapter, opts: RunOptions) -> TestResult:
    req, stale = _statement(test, opts)
    if stale:
        r = _result(test, req, Verdict.SKIP, f"OUTDATED: {stale}", Evidence(), opts.layout)
        r.outdated = True
        return r
    if test.group.target == "driver":   # the driver is under test: conformance/driver_mode.py
        from conformance.driver_mode import run_driver_test
        start = time.monotonic()
        verdict, reason, ev = run_driver_test(test, adapter, opts.layout)
        return _result(test, req, verdict, reason, ev, opts.layout, time.monotonic() - start)
    why = _group_skip(test.group, adapter)
    if why:
        return _result(test, req, Verdict.SKIP, why, Evidence(), opts.layout)
    group = test.group
    wanted = group.device_type
    if adapter.device_types is not None and wanted is not None \
            and wanted not in adapter.device_types:
        return _result(test, req, Verdict.SKIP,
                       f"needs a {wanted} device; {adapter.describe()} has "
                       f"{', '.join(adapter.device_types)}", Evidence(), opts.layout)
    start = time.monotonic()
    try:
        session = adapter.open(wanted)
    except Exception as exc:  # noqa: BLE001 - whatever the device did, the run goes on
        adapter.after_wedged()
        text = str(exc) if isinstance(exc, AdapterError) else f"unexpected error: {exc!r}"
        return _result(test, req, Verdict.WEDGED, f"device unreachable: {text}",
                       Evidence(step="(connect)", observed=text), opts.layout,
                       time.monotonic() - start)
    def reopen():
        return adapter.open(wanted)
    try:
        verdict, reason, ev = _execute(test, session, opts, reopen)
    finally:
        session.close()
    if verdict is Verdict.WEDGED:
        tail = [x for x in adapter.logs().splitlines() if x.strip()][-5:]
        if tail:
            ev.notes.append("device log: " + " | ".join(tail))
        adapter.after_wedged()
    return _result(test, req, verdict, reason, ev, opts.layout, time.monotonic() - start)


def _health(h: Harness, session, opts: RunOptions, reopen) -> tuple[str | None, str]:
    """Whether the device works after a reset; for a device in another
    process that dropped the connection, whether a new connection works
    (what a VMM does after a back-end disconnects)."""
    problem = h.health_check()
    if problem is None or session.synchronous:
        return problem, ""
    try:
        fresh = reopen()
    except Exception as exc:  # noqa: BLE001
        return f"{problem}; a new connection failed too: {exc}", ""
    try:
        again = Harness(fresh, opts.layout, opts.step_timeout).health_check()
    except Exception as exc:  # noqa: BLE001
        again = f"unexpected error: {exc!r}"
    finally:
        fresh.close()
    if again is None:
        return None, f" (the first connection broke: {problem}; a new one worked)"
    return problem, ""


def _execute(test: Test, session, opts: RunOptions, reopen=None) -> tuple[Verdict, str, Evidence]:
    h = Harness(session, opts.layout, opts.step_timeout)
    steps = list(test.group.preconditions) + list(test.steps)
    for i, step in enumerate(steps):
        h._upcoming = steps[i + 1:]
        ev = Evidence(step=step.describe(), step_index=i, source=step.source)
        try:
            limit = opts.hang_guard + opts.step_timeout + step.args.get("timeout_ms", 0) / 1000 \
                if opts.hang_guard > 0 else 0
            with guard(limit):
                h.run_step(step)
        except Hung as exc:
            return Verdict.WEDGED, f"{step.describe()}: the device hung: the step {exc}", \
                _fill(ev, Wedged(f"the step {exc}", "the step returns"))
        except Skipped as exc:
            return Verdict.SKIP, exc.observed, _fill(ev, exc)
        except Failed as exc:
            exc.critical = exc.critical or step.verb in CRITICAL_VERBS
            return Verdict.FAIL, _line(step, exc), _fill(ev, exc)
        except Wedged as exc:
            if test.result == "acceptable" and not session.synchronous and reopen is not None:
                # Either outcome conforms: a back-end may refuse by dropping the
                # connection, as long as a new connection works.
                problem, note = _health(h, session, opts, reopen)
                if problem is None:
                    return Verdict.PASS, f"{step.describe()}: refused ({exc.observed}); " \
                        f"a new connection worked", _fill(ev, exc)
            return Verdict.WEDGED, _line(step, exc), _fill(ev, exc)
        except TransportError as exc:
            return Verdict.WEDGED, f"{step.describe()}: the device stopped answering: {exc}", \
                _fill(ev, Wedged(str(exc)))
        except Exception as exc:  # noqa: BLE001 - a device must never crash the runner
            return Verdict.WEDGED, f"{step.describe()}: unexpected error: {exc!r}", \
                _fill(ev, Wedged(repr(exc)))
        # always-on invariants, checked after every step
        bad = _invariants(h)
        if bad is not None:
            return Verdict.FAIL, _line(step, bad), _fill(ev, bad)
    end = Evidence(step="(end of test)")
    if test.result in ("invalid", "acceptable"):
        problem, note = _health(h, session, opts, reopen)
        if problem:
            return Verdict.WEDGED, f"after the test the device did not work again: {problem}", \
                Evidence(step="(reset and retry)", expected="the device works after a reset",
                         observed=problem)
        bad = _invariants(h)
        if bad is not None:
            return Verdict.FAIL, f"(reset and retry): {bad.observed}", _fill(end, bad)
        if test.result == "invalid":
            return Verdict.REJECT, "handled the invalid input safely (every expectation held) " \
                "and worked again after a reset" + note, end
        if note:
            return Verdict.PASS, "behaved as required" + note, end
    return Verdict.PASS, "behaved as required", end


def _invariants(h: Harness) -> Failed | None:
    """What a device must never do, whatever the vector checks."""
    if h.readable_corrupted:
        return Failed(f"device wrote into {h.readable_corrupted[0]}",
                      "device-readable buffers left unchanged")
    if h.swiotlb and session_watch(h) is not None:
        problems = session_watch(h).violations()
        if problems:
            return Failed("; ".join(problems[:3]),
                          "guest memory outside the bounce region untouched", critical=True)
    return None


def session_watch(h: Harness):
    return h.s.watch


def _line(step, exc: StepOutcome) -> str:
    text = f"{step.describe()}: {exc.observed}"
    if exc.expected:
        text += f" (expected {exc.expected})"
    return text


def _fill(ev: Evidence, exc: StepOutcome) -> Evidence:
    ev.expected = exc.expected
    ev.observed = exc.observed
    ev.critical = bool(getattr(exc, "critical", False))
    return ev


def run_suite(suite: Suite, adapter: Adapter, opts: RunOptions,
              progress: Callable[[int, int, TestResult], None] | None = None) -> RunResult:
    tests = [t for t in suite.tests() if selected(t, opts.only)]
    out = RunResult(adapter=adapter.describe(), layout=opts.layout)
    start = time.monotonic()
    current_group = None
    try:
        for n, test in enumerate(tests, 1):
            if test.group is not current_group:
                if current_group is not None:
                    adapter.end_group()
                current_group = test.group
                adapter.begin_group(f"{test.group.file.module}#{test.group.index}")
            r = run_test(test, adapter, opts)
            out.results.append(r)
            if progress is not None:
                progress(n, len(tests), r)
        if current_group is not None:
            adapter.end_group()
    finally:
        out.device_log = adapter.logs()
        adapter.close()
        adapter.cleanup()
    out.seconds = time.monotonic() - start
    return out
