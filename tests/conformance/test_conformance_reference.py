"""The suite against the unmodified reference devices: no FAIL, no WEDGED,
in-process, split and packed, with and without VIRTIO_F_SWIOTLB; and every
step verb of the vocabulary has an implementation in the runner."""
from __future__ import annotations

import pytest

from conformance.select_adapter import parse_adapter
import conformance.verbs  # noqa: F401 - registers the verbs
from conformance.engine.registry import REGISTRY
from conformance.runner import RunOptions, run_suite
from conformance.verdicts import Verdict


@pytest.mark.parametrize("layout", ["split", "packed"])
@pytest.mark.parametrize("device", ["ref", "ref:swiotlb=off"])
def test_reference_device_has_no_fail_and_no_wedged(suite, device, layout):
    run = run_suite(suite, parse_adapter(device), RunOptions(layout=layout))
    bad = [(r.check_id, r.reason) for r in run.results if r.verdict in (Verdict.FAIL, Verdict.WEDGED)]
    assert not bad
    verdicts = {r.verdict for r in run.results}
    assert Verdict.PASS in verdicts and Verdict.REJECT in verdicts
    by_check = {r.check_id: r for r in run.results}
    # the ordinary block round trip is exercised on both layouts
    assert by_check["base.blk.dev.basic-requests/write-read"].verdict is Verdict.PASS
    inside = by_check["swiotlb.dev.inside-works/blk-roundtrip"]
    if device == "ref":
        assert inside.verdict is Verdict.PASS
        # a descriptor outside the region is refused, and the device works after a reset
        assert by_check["swiotlb.dev.no-access-outside/outside-writable"].verdict is Verdict.REJECT
    else:
        # without a bounce region the device does not offer the feature: SKIP, saying why
        assert inside.verdict is Verdict.SKIP and "VIRTIO_F_SWIOTLB" in inside.reason
    for r in run.results:
        if r.verdict is Verdict.SKIP:
            assert r.reason.strip(), r.check_id


@pytest.mark.parametrize("layout", ["split", "packed"])
def test_generic_vectors_pass_on_the_entropy_device_too(suite, layout):
    from conformance.adapters.base import AdapterOptions
    run = run_suite(suite, parse_adapter("ref", AdapterOptions(device_type="rng")),
                    RunOptions(layout=layout))
    assert not [r for r in run.results if r.verdict in (Verdict.FAIL, Verdict.WEDGED)]
    by = {r.check_id: r for r in run.results}
    assert by["base.reset.dev.status-zero/after-io"].verdict is Verdict.PASS


def test_every_skip_has_a_reason_and_layout_skips_name_the_layout(suite):
    run = run_suite(suite, parse_adapter("ref"), RunOptions(layout="packed"))
    for r in run.results:
        if r.verdict is Verdict.SKIP and "layout" in r.reason:
            assert "packed" in r.reason


def test_every_verb_of_the_vocabulary_is_registered():
    from specc import actions
    missing = [f"{kind} {name}" for (kind, name) in actions.VERBS if (kind, name) not in REGISTRY]
    assert not missing, f"verbs the runner does not implement: {missing}"


def test_parameters_of_each_verb_match_the_vocabulary():
    from specc import actions
    for (kind, name), verb in actions.VERBS.items():
        declared = set(REGISTRY[(kind, name)].params)
        assert declared == {p.name for p in verb.params}, f"{kind} {name}"


def test_choices_the_registry_declares_are_those_of_the_vocabulary():
    """An enum the compiler accepts must bind in the runner (no vector error
    for a value specc lets through)."""
    from specc import actions
    for (kind, name), verb in actions.VERBS.items():
        for p in verb.params:
            mine = REGISTRY[(kind, name)].params[p.name]
            if p.type == "enum" and mine.choices:
                assert set(p.choices) <= set(mine.choices), f"{kind} {name} {p.name}"


def test_mmio_presentation_runs_mmio_vectors_and_skips_pci_ones(suite):
    run = run_suite(suite, parse_adapter("ref:transport=mmio"), RunOptions(layout="split"))
    assert not [r for r in run.results if r.verdict in (Verdict.FAIL, Verdict.WEDGED)]
    pci = [r for r in run.results if r.requirement.startswith("swiotlb.pci.dev.")]
    assert pci and all(r.verdict is Verdict.SKIP and "pci transport" in r.reason for r in pci)
    by = {r.check_id: r for r in run.results}
    assert by["swiotlb.dev.region-described/region-nonempty"].verdict is Verdict.PASS


def test_a_vector_the_device_does_not_match_is_skipped_with_the_reason(suite):
    run = run_suite(suite, parse_adapter("ref:swiotlb=off"),
                    RunOptions(layout="split", only=("swiotlb.dev.region-described",)))
    assert [r.verdict for r in run.results] == [Verdict.SKIP]
    assert "does not offer VIRTIO_F_SWIOTLB" in run.results[0].reason


@pytest.mark.parametrize("layout", ["split", "packed"])
def test_reference_net_device_passes_its_vectors_and_the_generic_ones(suite, layout):
    from conformance.adapters.base import AdapterOptions
    run = run_suite(suite, parse_adapter("ref", AdapterOptions(device_type="net")),
                    RunOptions(layout=layout))
    assert not [(r.check_id, r.reason) for r in run.results
                if r.verdict in (Verdict.FAIL, Verdict.WEDGED)]
    net = {r.check_id: r for r in run.results if r.requirement.startswith("base.net.")}
    # every net check ran but the one about a feature the device does not offer
    skipped = [c for c, r in net.items() if r.verdict is Verdict.SKIP]
    assert skipped == ["base.net.dev.hash-needs-ctrl/hash-report-with-control-queue"]
    assert len(net) >= 14
    # a queue reset alone on net resets transmitq1, where the request waits
    by = {r.check_id: r for r in run.results}
    assert by["base.vqreset.dev.silent/pending-request"].verdict is Verdict.PASS


@pytest.mark.parametrize("layout", ["split", "packed"])
def test_reference_console_passes_the_port_0_vectors(suite, layout):
    """In process the reference console's port 0 has a host end (ConsoleHost):
    output reaches it, input typed there comes in, emergency writes too."""
    from conformance.adapters.base import AdapterOptions
    run = run_suite(suite, parse_adapter("ref", AdapterOptions(device_type="console")),
                    RunOptions(layout=layout))
    assert not [(r.check_id, r.reason) for r in run.results
                if r.verdict in (Verdict.FAIL, Verdict.WEDGED)]
    by = {r.check_id: r.verdict for r in run.results}
    for check in ("base.console.dev.emerg-any-time/before-negotiation",
                  "base.console.dev.emerg-output/to-port-zero", "base.console.dev.port-io/send",
                  "base.console.dev.port-io/receive", "base.console.drv.rx-writable/writable-only",
                  "base.console.drv.tx-readable/readable-only"):
        assert by[check] is Verdict.PASS, check
