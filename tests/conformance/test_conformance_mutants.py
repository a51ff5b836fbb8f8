"""Fault injection: every variant is caught by a FAIL or WEDGED on the
requirement it breaks, and the unmodified device is clean (see
test_conformance_reference.py)."""
from __future__ import annotations

import pytest

from conformance.adapters.base import AdapterOptions
from conformance.mutants import MUTANTS
from conformance.runner import RunOptions, run_suite
from conformance.verdicts import BAD, Verdict


def test_there_are_at_least_fifteen_variants_each_naming_a_distinct_behaviour():
    assert len(MUTANTS) >= 15
    assert len({m.name for m in MUTANTS}) == len(MUTANTS)
    assert all(m.doc for m in MUTANTS)


def test_every_variant_names_a_requirement_the_vectors_know(suite):
    known = suite.requirements()
    for m in MUTANTS:
        assert m.breaks in known, m.name
        assert known[m.breaks].testable


@pytest.mark.parametrize("mutant", MUTANTS, ids=[m.name for m in MUTANTS])
def test_variant_is_caught_on_the_requirement_it_breaks(suite, mutant):
    bad = []
    for layout in ("split", "packed"):
        run = run_suite(suite, mutant.adapter(AdapterOptions(timeout=0.2)),
                        RunOptions(layout=layout, step_timeout=0.2, only=(mutant.breaks,)))
        bad += [r for r in run.results if r.verdict in BAD]
    assert bad, f"{mutant.name} escaped: no FAIL or WEDGED on {mutant.breaks}"
    assert all(r.requirement == mutant.breaks for r in bad)
    assert all(r.evidence.step and r.evidence.observed for r in bad)


def test_memory_violations_are_critical(suite):
    from conformance.mutants import by_name
    run = run_suite(suite, by_name("writes-outside-region").adapter(),
                    RunOptions(layout="split", step_timeout=0.2,
                               only=("swiotlb.dev.no-access-outside",)))
    crit = [r for r in run.results if r.evidence.critical]
    assert crit and all(r.verdict.value == "FAIL" for r in crit)
    assert any("changed at" in r.evidence.observed for r in crit)


def _cli(*args):
    import subprocess
    import sys
    return subprocess.run([sys.executable, "-m", "conformance.cli", "mutants", *args],
                          capture_output=True, text=True, timeout=600)


def test_mutants_command_prints_the_table_and_exits_0_when_all_are_caught(vectors_dir):
    out = _cli("--vectors", str(vectors_dir), "--only", "writes-outside-region",
               "no-version-1", "--layout", "split", "--step-timeout", "0.2")
    assert out.returncode == 0, out.stdout + out.stderr
    lines = out.stdout.splitlines()
    assert lines[0].split()[:3] == ["VARIANT", "BREAKS", "CAUGHT"]
    assert any(x.startswith("(unmodified)") and "clean" in x for x in lines)
    assert any(x.startswith("writes-outside-region") and "yes, FAIL" in x for x in lines)
    assert "2 of 2 variants caught; unmodified device clean: OK" in out.stdout
    # each variant was reported as it finished, in order, on stderr
    told = out.stderr.splitlines()
    assert [x.split(":")[0] for x in told] == ["[1/3] (unmodified)", "[2/3] writes-outside-region",
                                               "[3/3] no-version-1"]
    assert "caught (FAIL on" in told[1]


def test_mutants_command_lists_and_refuses_unknown_names(vectors_dir):
    out = _cli("--list")
    assert out.returncode == 0 and len(out.stdout.splitlines()) == len(MUTANTS)
    out = _cli("--vectors", str(vectors_dir), "--only", "nope")
    assert out.returncode == 2 and "unknown variant 'nope'" in out.stderr


def test_releasing_unauthenticated_data_is_critical(suite):
    from conformance.mutants import by_name
    run = run_suite(suite, by_name("uses-forged-buffers").adapter(),
                    RunOptions(layout="split", step_timeout=0.2, only=("qenc.dev.refuse-forged",)))
    bad = [r for r in run.results if r.verdict in BAD]
    assert bad and all(r.evidence.critical for r in bad)


def test_a_device_that_never_returns_is_wedged_not_a_hung_run(suite):
    from conformance.adapters.ref import RefAdapter, reference_device

    def hanging(device_type, bounce):
        dev = reference_device(device_type, bounce)

        def notify(queue):
            while True:
                pass
        dev.notify = notify
        return dev

    run = run_suite(suite, RefAdapter(AdapterOptions(), factory=hanging),
                    RunOptions(layout="split", step_timeout=0.2, hang_guard=0.5,
                               only=("base.blk.dev.basic-requests/write-read",)))
    assert [r.verdict for r in run.results] == [Verdict.WEDGED]
    assert "the device hung" in run.results[0].reason
