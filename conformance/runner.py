"""Run a suite of vectors through an adapter and give each test a verdict."""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable

from device_ref.ring.hostile import ChainTooLong, QueueFull, RingOutcome, RingViolation
from device_ref.transport import TransportError

from conformance import conditions, verbs  # noqa: F401 - verbs: registers every verb
from conformance.adapters.base import Adapter, AdapterError, SetupError
from conformance.driver_mode import run_driver_test
from conformance.engine.core import Engine, raised_by_device
from conformance.health import health_check
from conformance.engine.registry import Bound, bind
from conformance.outcomes import EngineError, Failed, Skipped, StepOutcome, Wedged
from conformance.vectors import Requirement, Step, Suite, Test
from conformance.verdicts import Evidence, TestResult, Verdict
from conformance.watchdog import Hung, guard

# Expectations whose failure means the device reached memory it must not,
# or released data it must not: reported CRITICAL.
CRITICAL_VERBS = {"memory_outside_region", "qenc_refused"}
# Actions that only give the device time: a device that stopped before them
# still stopped in the rule's own step.
WAITING_VERBS = {"kick", "wait_used"}



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


@dataclass
class Connections:
    """What the runner saw of the adapter's connections over a run: a second
    connection refused right after a first that worked is a setup error."""

    opened: int = 0
    last_gone: bool = False


def run_test(test: Test, adapter: Adapter, opts: RunOptions,
             bound: dict[int, Bound] | None = None,
             links: Connections | None = None) -> TestResult:
    req, stale = _statement(test, opts)
    if stale:
        r = _result(test, req, Verdict.SKIP, f"OUTDATED: {stale}", Evidence(), opts.layout)
        r.outdated = True
        return r
    start = time.monotonic()
    if test.group.target == "driver":   # the driver is under test: conformance/driver_mode.py
        rig = adapter.driver_rig()
        if rig is None:
            return _result(test, req, Verdict.SKIP, DRIVER_RIG_MISSING, Evidence(), opts.layout)
        verdict, reason, ev = run_driver_test(test, rig, opts.layout)
        return _result(test, req, verdict, reason, ev, opts.layout, time.monotonic() - start)
    wanted = test.group.device_type
    if adapter.device_types is not None and wanted is not None \
            and wanted not in adapter.device_types:
        return _result(test, req, Verdict.SKIP,
                       f"needs a {wanted} device; {adapter.describe()} has "
                       f"{', '.join(adapter.device_types)}", Evidence(), opts.layout)
    links = links if links is not None else Connections()
    try:
        session = adapter.take_spare(wanted) or adapter.open(wanted)
    except AdapterError as exc:
        if links.opened == 1 and not links.last_gone:
            raise SetupError(f"{adapter.describe()}: the back-end accepted one connection and "
                             f"refused the next ({exc}); a back-end that serves one connection "
                             f"per process runs under spawn:, which starts one per test "
                             f"group") from None
        # No step of this test ran, so no rule of it was reached: not a verdict
        # about the rule (the test that left the device down has its own).
        adapter.after_wedged()
        return _result(test, req, Verdict.SKIP, f"device unreachable, no step ran: {exc}",
                       Evidence(step="(connect)", observed=str(exc)), opts.layout,
                       time.monotonic() - start)
    links.opened += 1
    bound = bound if bound is not None else bind_test(test)
    try:
        verdict, reason, ev = _execute(test, session, opts, bound, lambda: adapter.open(wanted))
        links.last_gone = ev.device_gone or session.gone()
    finally:
        session.close()
    verdict, reason = _conditional(req, verdict, reason, ev)
    if verdict in (Verdict.FAIL, Verdict.WEDGED):
        tail = adapter.log_tail(5)
        if tail:
            ev.notes.append("device log: " + " | ".join(tail))
    if verdict is Verdict.WEDGED or ev.device_gone:
        adapter.after_wedged()
    return _result(test, req, verdict, reason, ev, opts.layout, time.monotonic() - start)


DRIVER_RIG_MISSING = ("driver under test: driver-mode vectors run with the ref adapter "
                      "(check another driver with device-ref serve --check-driver)")


def bind_test(test: Test) -> dict[int, Bound]:
    """Every step of a test matched to its verb (StepError: a vector error)."""
    where = f"{test.group.file.path}: {test.key}"
    return {id(s): bind(s, f"{where} ({s.source})")
            for s in (*test.group.preconditions, *test.steps)}


def _conditional(req: Requirement | None, verdict: Verdict, reason: str,
                 ev: Evidence) -> tuple[Verdict, str]:
    """FAIL and WEDGED stand only where the rule applied (design.md, "Verdicts")."""
    if verdict not in (Verdict.FAIL, Verdict.WEDGED):
        return verdict, reason
    if ev.not_reached:
        return Verdict.SKIP, f"condition never held: {ev.not_reached}"
    if req is not None and req.condition and ev.observations is not None:
        failed = conditions.unmet(req.condition, ev.observations)
        if failed:
            return Verdict.SKIP, f"condition never held: {failed} ({reason})"
    return verdict, reason


def _health(e: Engine, session, opts: RunOptions, reopen) -> tuple[str | None, str]:
    """Whether the device works after a reset; for a device in another
    process that dropped the connection, whether a new connection works
    (what a VMM does after a back-end disconnects)."""
    problem = health_check(e)
    if problem is None or session.synchronous:
        return problem, ""
    try:
        fresh = reopen()
    except AdapterError as exc:
        return f"{problem}; a new connection failed too: {exc}", ""
    try:
        again = health_check(Engine.start(fresh, opts.layout, opts.step_timeout))
    finally:
        fresh.close()
    if again is None:
        return None, f" (the first connection broke: {problem}; a new one worked)"
    return problem, ""


def _run_step(e: Engine, b: Bound) -> None:
    if b.verb is None:
        raise Skipped(b.skip or f"this runner does not implement {b.step.kind} '{b.step.verb}'")
    b.verb.fn(e, **b.args)


def _first_expectation(steps: list[Step]) -> int:
    return next((i for i, s in enumerate(steps) if s.kind == "expectation"), len(steps))


def _execute(test: Test, session, opts: RunOptions, bound: dict[int, Bound],
             reopen) -> tuple[Verdict, str, Evidence]:
    e = Engine.start(session, opts.layout, opts.step_timeout)
    steps = list(test.group.preconditions) + list(test.steps)
    rule_step = _first_expectation(steps)
    for i, step in enumerate(steps):
        e.upcoming = tuple(steps[i + 1:])
        ev = Evidence(step=step.describe(), step_index=i, source=step.source)
        b = bound[id(step)]
        limit = opts.hang_guard + opts.step_timeout + b.args.get("timeout_ms", 0) / 1000 \
            if opts.hang_guard > 0 else 0
        try:
            with guard(limit):
                _run_step(e, b)
        except Hung as exc:
            return Verdict.WEDGED, f"{step.describe()}: the device hung: the step {exc}", \
                _fill(ev, Wedged(f"the step {exc}", "the step returns"), e)
        except (Skipped, ChainTooLong) as exc:
            return Verdict.SKIP, exc.observed, _fill(ev, exc, e)
        except (Failed, RingViolation) as exc:
            exc.critical = exc.critical or step.verb in CRITICAL_VERBS
            return Verdict.FAIL, _line(step, exc), _fill(ev, exc, e)
        except (Wedged, QueueFull, TransportError) as exc:
            out = exc if isinstance(exc, (Wedged, QueueFull)) else \
                Wedged(f"the device stopped answering: {exc}")
            _fill(ev, out, e)
            gone = _gone(session)
            ev.device_gone = gone
            if test.result == "acceptable" and not session.synchronous:
                # Either outcome conforms: a back-end may refuse by dropping the
                # connection or by exiting (the rule lets it stop working).
                if gone:
                    return Verdict.PASS, f"{step.describe()}: refused ({out.observed}); the " \
                        f"back-end stopped working, which the rule allows", ev
                problem, _note = _health(e, session, opts, reopen)
                if problem is None:
                    return Verdict.PASS, f"{step.describe()}: refused ({out.observed}); " \
                        f"a new connection worked", ev
            # A device that stopped on hostile input, when the test still had
            # to act (a reset, a request) before the step that checks the rule,
            # never reached the rule: its condition never held. One that stops
            # on ordinary requests, or where only waiting remained, is WEDGED.
            hostile = test.result != "valid" or bool(e.offending)
            acts = [s for s in steps[i + 1:rule_step]
                    if s.kind == "action" and s.verb not in WAITING_VERBS]
            if gone and hostile and acts and rule_step < len(steps):
                ev.not_reached = (f"the device stopped answering at '{step.describe()}', "
                                  f"before '{acts[0].describe()}' and the step that checks "
                                  f"the rule ('{steps[rule_step].describe()}')")
            return Verdict.WEDGED, _line(step, out), ev
        except Exception as exc:  # noqa: BLE001 - the device's crash or the runner's fault
            if raised_by_device(exc):
                # an in-process device runs on this thread: its exception is its crash
                out = Wedged(f"the device crashed: {exc!r}", "the device keeps working")
                return Verdict.WEDGED, _line(step, out), _fill(ev, out, e)
            raise EngineError(f"{test.key} ({step.source}): {step.describe()}: the runner "
                              f"failed: {exc!r}") from exc
        bad = _invariants(e)
        if bad is not None:
            return Verdict.FAIL, _line(step, bad), _fill(ev, bad, e)
    end = Evidence(step="(end of test)")
    note = ""
    if test.result in ("invalid", "acceptable"):
        offending = _offending_notes(e)       # before the reset of the health check
        problem, note = _health(e, session, opts, reopen)
        if problem:
            if test.result == "acceptable" and _gone(session):
                return Verdict.PASS, "the back-end stopped working after the test, which " \
                    "the rule allows", end
            return Verdict.WEDGED, f"after the test the device did not work again: {problem}", \
                _fill(Evidence(step="(reset and retry)"), Wedged(problem,
                      "the device works after a reset"), e)
        bad = _invariants(e)
        if bad is not None:
            return Verdict.FAIL, f"(reset and retry): {bad.observed}", _fill(end, bad, e)
        if test.result == "invalid":
            end.notes += offending
            said = "".join(f"; {r}" for r in e.remarks)
            return Verdict.REJECT, "handled the invalid input safely (every expectation held" \
                f"{said}) and worked again after a reset" + note, end
    return Verdict.PASS, "behaved as required" + note, end


def _gone(session) -> bool:
    """Whether the device behind the session has gone (connection closed, process exited)."""
    return session.gone()


def _invariants(e: Engine) -> Failed | None:
    """What a device must never do, whatever the vector checks."""
    if e.readable_corrupted:
        return Failed(f"device wrote into {e.readable_corrupted[0]}",
                      "device-readable buffers left unchanged")
    if e.swiotlb and e.s.watch is not None:
        problems = e.s.watch.violations()
        if problems:
            return Failed("; ".join(problems[:3]),
                          "guest memory outside the bounce region untouched", critical=True)
    return None


def _line(step, exc: StepOutcome | RingOutcome) -> str:
    text = f"{step.describe()}: {exc.observed}"
    if exc.expected:
        text += f" (expected {exc.expected})"
    return text


def _fill(ev: Evidence, exc: StepOutcome | RingOutcome, e: Engine) -> Evidence:
    """The outcome's comparison plus what the device did to the hostile buffers."""
    ev.expected = exc.expected
    ev.observed = exc.observed
    ev.critical = exc.critical
    ev.observations = e.observations()
    ev.notes += _offending_notes(e)
    return ev


def _offending_notes(e: Engine) -> list[str]:
    """Whether the device used each hostile buffer the test made available."""
    return [f"the offending buffer on {e.queue_name(queue)} was "
            + ("used by the device" if e.offending_used(token) else "never used by the device")
            for token, queue in e.offending]


def run_suite(suite: Suite, adapter: Adapter, opts: RunOptions,
              progress: Callable[[int, int, TestResult], None] | None = None) -> RunResult:
    tests = [t for t in suite.tests() if selected(t, opts.only)]
    bound = {id(t): bind_test(t) for t in tests}     # a vector error stops the run here
    links = Connections()
    out = RunResult(adapter=adapter.describe(), layout=opts.layout)
    start = time.monotonic()
    current_group = None
    try:
        if tests and not adapter.preflighted:
            adapter.preflight()    # SetupError: the run cannot start as asked
        for n, test in enumerate(tests, 1):
            if test.group is not current_group:
                if current_group is not None:
                    adapter.end_group()
                current_group = test.group
                adapter.begin_group(f"{test.group.file.module}#{test.group.index}")
            r = run_test(test, adapter, opts, bound[id(test)], links)
            out.results.append(r)
            if progress is not None:
                progress(n, len(tests), r)
        if current_group is not None:
            adapter.end_group()
    finally:
        spare = adapter.take_spare(None)
        if spare is not None:
            spare.close()
        out.device_log = adapter.logs()
        adapter.close()
        adapter.cleanup()
    out.seconds = time.monotonic() - start
    return out
