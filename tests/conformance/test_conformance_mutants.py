"""Fault injection: every variant is caught by a FAIL or WEDGED on the
requirement it breaks, and the unmodified device is clean (see
test_conformance_reference.py)."""
from __future__ import annotations

import pytest

from conformance.adapters.base import AdapterOptions
from conformance.mutants import MUTANTS
from conformance.runner import RunOptions, run_suite
from conformance.verdicts import BAD


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
