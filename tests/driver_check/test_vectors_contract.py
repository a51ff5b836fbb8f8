"""The vectors are the contract: driver-mode checks run against the
checking device with the ref adapter, and every property the checker
records maps to requirement ids through the vector files."""
from __future__ import annotations

import json

import pytest

from conformance.adapters.base import AdapterOptions
from conformance.adapters.ref import RefAdapter
from conformance.runner import RunOptions, run_suite
from conformance.vectors import load_suite
from device_ref.checking.device import CHECKED_PROPERTIES
from device_ref.checking.requirements import EXTRA, expectation_key, load_map

# Why a driver-mode vector may SKIP with the reference devices (each reason
# is a precondition the in-process rig cannot meet, or a property the
# checker leaves unjudged on purpose: docs/driver-check.md).
ALLOWED_SKIPS = ("needs the split ring layout", "needs the packed ring layout",
                 # a feature the reference devices do not offer (NOTIFICATION_DATA,
                 # BLK_F_RO, BLK_F_DISCARD, proposals of other modules)
                 "device does not offer VIRTIO_", "with no region",
                 # rules about a step the reference driver never takes (FAILED, SUSPEND)
                 "the driver under test never set ")


@pytest.mark.parametrize("layout", ["split", "packed"])
def test_reference_driver_passes_every_driver_mode_vector(vectors_dir, layout):
    suite = load_suite(vectors_dir)
    driver = [t for t in suite.tests() if t.group.target == "driver"]
    assert len(driver) >= 40
    only = tuple(t.key for t in driver)
    res = run_suite(suite, RefAdapter(AdapterOptions()), RunOptions(layout=layout, only=only))
    assert len(res.results) == len(driver)
    verdicts = {r.key: (r.verdict.value, r.reason) for r in res.results}
    bad = {k: v for k, v in verdicts.items() if v[0] not in ("PASS", "SKIP")}
    assert not bad
    odd = {k: v for k, v in verdicts.items()
           if v[0] == "SKIP" and not any(a in v[1] for a in ALLOWED_SKIPS)}
    assert not odd
    passed = sum(v[0] == "PASS" for v in verdicts.values())
    assert passed >= 25, verdicts


def test_driver_mode_needs_an_adapter_with_a_driver_rig(vectors_dir):
    """Driver-mode vectors go through the runner to the adapter's driver rig;
    an adapter without one (vhost-user, a fault-injected device) SKIPs them."""
    from conformance.adapters.base import AdapterOptions
    from conformance.adapters.vhost_user import VhostUserAdapter
    from conformance.runner import RunOptions, run_test
    suite = load_suite(vectors_dir)
    test = next(t for t in suite.tests() if t.group.target == "driver")
    adapter = VhostUserAdapter("/nonexistent.sock", AdapterOptions(device_type="blk"))
    assert adapter.driver_rig() is None
    r = run_test(test, adapter, RunOptions(layout="split"))
    assert r.verdict.value == "SKIP" and "serve --check-driver" in r.reason


def test_every_checked_property_names_a_requirement(vectors_dir):
    rmap = load_map(str(vectors_dir))
    for key in CHECKED_PROPERTIES:
        ids = rmap.ids(key)
        assert ids, f"{key}: no driver-mode vector names it"
        for rid in ids:
            keyword, label = rmap.label(rid)
            assert ".drv." in rid and keyword in ("MUST", "MUST NOT", "SHOULD", "SHOULD NOT")
            assert label.startswith("drivernormative:")


def test_extra_table_names_existing_driver_statements(vectors_dir):
    rmap = load_map(str(vectors_dir))
    for key, ids in EXTRA.items():
        for rid in ids:
            assert rid in rmap.labels, f"{key} -> {rid} is not in the vectors"
            assert rmap.labels[rid][1].startswith("drivernormative:")


def test_layout_narrows_the_requirement(vectors_dir):
    rmap = load_map(str(vectors_dir))
    assert rmap.ids("driver_chains readable_first", "packed", "blk") == \
        ["base.packed.drv.readable-first", "base.framing.drv.readable-first"] or \
        set(rmap.ids("driver_chains readable_first", "packed", "blk")) == \
        {"base.packed.drv.readable-first", "base.framing.drv.readable-first"}
    assert "base.packed.drv.readable-first" not in \
        rmap.ids("driver_chains readable_first", "split", "blk")
    # both statements a descriptor changed while exposed breaks (packed ring, device cleanup)
    assert set(rmap.ids("driver_queues available_stay_put", "packed")) == \
        {"base.packed.drv.stable-after-avail", "base.cleanup.drv.exposed-untouched"}
    assert rmap.ids("accepted has VIRTIO_F_SWIOTLB") == ["swiotlb.rfb.drv.accept"]


def test_expectation_key_spelling():
    assert expectation_key("driver_chains", {"property": "bounded"}) == "driver_chains bounded"
    assert expectation_key("accepted", {"features": ["VIRTIO_F_VERSION_1"], "op": "has"}) == \
        "accepted has VIRTIO_F_VERSION_1"
    assert expectation_key("accepted_subset", {}) == "accepted_subset"


def test_unusable_vectors_directory(tmp_path):
    from device_ref.checking.requirements import VectorsError
    with pytest.raises(VectorsError):
        load_map(str(tmp_path / "missing"))
    with pytest.raises(VectorsError):
        load_map(str(tmp_path))
    (tmp_path / "x.json").write_text(json.dumps({"nope": 1}))
    with pytest.raises(VectorsError):
        load_map(str(tmp_path))
