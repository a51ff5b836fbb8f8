"""The loader: schema copy, validation, version refusal, typed records."""
from __future__ import annotations

import json
import shutil

import pytest

from conformance.vectors import VectorError, load_file, load_suite

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_shipped_schema_is_a_copy_of_the_emitters_schema():
    ours = (ROOT / "conformance" / "schemas" / "vectors.schema.json").read_bytes()
    theirs = (ROOT / "specc" / "schemas" / "vectors.schema.json").read_bytes()
    assert json.loads(ours) == json.loads(theirs), \
        "copy specc/schemas/vectors.schema.json to conformance/schemas/"


def test_every_generated_file_loads(vectors_dir, suite):
    names = {p.stem for p in vectors_dir.glob("*.json")}
    assert {f.module for f in suite.files} == names
    assert "swiotlb" in names
    for f in suite.files:
        for t in f.tests():
            assert t.group.file is f
            assert t.steps, t.check_id


def _doc(vectors_dir):
    return json.loads((vectors_dir / "swiotlb.json").read_text())


def test_unknown_major_version_is_refused_with_a_clear_message(vectors_dir, tmp_path):
    doc = _doc(vectors_dir)
    doc["schemaVersion"] = "2.0"
    p = tmp_path / "v2.json"
    p.write_text(json.dumps(doc))
    with pytest.raises(VectorError, match=r"unsupported vector schema version '2.0'.*1\.x"):
        load_file(p)


def test_newer_minor_version_is_read(vectors_dir, tmp_path):
    doc = _doc(vectors_dir)
    doc["schemaVersion"] = "1.7"
    p = tmp_path / "v17.json"
    p.write_text(json.dumps(doc))
    assert load_file(p).schema_version == "1.7"


def test_schema_violation_names_the_place(vectors_dir, tmp_path):
    doc = _doc(vectors_dir)
    doc["testGroups"][0]["tests"][0]["result"] = "maybe"
    p = tmp_path / "bad.json"
    p.write_text(json.dumps(doc))
    with pytest.raises(VectorError, match=r"bad.json: does not match the vectors schema: at "
                                          r"testGroups/0/tests/0/result"):
        load_file(p)


def test_not_json_and_not_vectors(tmp_path):
    p = tmp_path / "x.json"
    p.write_text("{nope")
    with pytest.raises(VectorError, match=r"x.json:1:2: not valid JSON"):
        load_file(p)
    p.write_text('{"schema": "something-else"}')
    with pytest.raises(VectorError, match="not a vector file"):
        load_file(p)
    with pytest.raises(VectorError, match="no such file"):
        load_suite(tmp_path / "missing")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(VectorError, match="holds no vector files"):
        load_suite(empty)


def test_same_module_twice_is_refused(vectors_dir, tmp_path):
    shutil.copy(vectors_dir / "swiotlb.json", tmp_path / "a.json")
    shutil.copy(vectors_dir / "swiotlb.json", tmp_path / "b.json")
    with pytest.raises(VectorError, match="module 'swiotlb' also loaded"):
        load_suite(tmp_path)


def test_conformance_clause_follows_the_upstream_layout(suite):
    from conformance.vectors import derive_clause
    # conformance.tex: a clause per role, sub-clauses per transport and device type
    assert derive_clause("device", "Device Types / Block Device / Device Operation") == \
        "Device Conformance / Block Device Conformance"
    assert derive_clause("driver", "Device Types / Entropy Device / Device Operation") == \
        "Driver Conformance / Entropy Driver Conformance"
    assert derive_clause("device", "Virtio Transport Options / Virtio Over PCI Bus / PCI Device "
                         "Layout / Software IOTLB bounce buffer capability") == \
        "Device Conformance / PCI Device Conformance"
    assert derive_clause("driver", "Basic Facilities of a Virtio Device / Device Reset") == \
        "Driver Conformance"
    reqs = suite.requirements()
    assert reqs["swiotlb.pci.dev.within-bar"].conformance_clause == \
        "Device Conformance / PCI Device Conformance"


def test_a_newer_vocabulary_is_skipped_with_a_reason_not_a_crash(vectors_dir, tmp_path):
    from conformance.select_adapter import parse_adapter
    from conformance.runner import RunOptions, run_suite
    from conformance.verdicts import Verdict
    doc = _doc(vectors_dir)
    group = next(g for g in doc["testGroups"] if g["target"] == "device" and len(g["tests"]) > 1)
    a, b = group["tests"][0], group["tests"][1]
    a["steps"].insert(0, {"verb": "teleport", "kind": "action", "args": {}, "source": "x.vspec:1"})
    b["steps"][0]["args"]["future_arg"] = 1
    p = tmp_path / "v.json"
    p.write_text(json.dumps(doc))
    run = run_suite(load_suite(p), parse_adapter("ref"), RunOptions())
    by = {r.check_id: r for r in run.results}
    first, second = by[a["checkId"]], by[b["checkId"]]
    assert first.verdict is Verdict.SKIP and "does not implement action 'teleport'" in first.reason
    assert second.verdict is Verdict.SKIP and "does not understand the arguments" in second.reason
