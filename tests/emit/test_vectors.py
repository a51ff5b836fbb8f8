"""Conformance vectors: schema-valid, deterministic, and faithful to the checks."""
import copy
import json
import os
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest

from specc.emit.schema_check import errors, load_schema
from specc.emit.vectors import display_path, dumps, module_vectors

from tests.emit.conftest import ROOT, SWIOTLB

SCHEMA = load_schema("vectors.schema.json")


@pytest.fixture(scope="module")
def doc(swiotlb) -> dict:
    return json.loads(dumps(module_vectors(swiotlb, SWIOTLB.read_bytes(),
                                           display_path(str(SWIOTLB)))))


def test_schema_is_a_valid_draft_2020_12_schema() -> None:
    jsonschema.Draft202012Validator.check_schema(SCHEMA)


def test_output_is_valid_for_jsonschema_and_the_builtin_validator(doc) -> None:
    jsonschema.Draft202012Validator(SCHEMA).validate(doc)
    assert errors(doc, SCHEMA) == []


def _mutations(doc: dict):
    def m(fn):
        d = copy.deepcopy(doc)
        fn(d)
        return d
    t0 = lambda d: d["testGroups"][0]["tests"][0]   # noqa: E731
    yield "result outside the enum", m(lambda d: t0(d).update(result="maybe"))
    yield "tcId zero", m(lambda d: t0(d).update(tcId=0))
    yield "tcId as a string", m(lambda d: t0(d).update(tcId="1"))
    yield "missing header field", m(lambda d: d.pop("numberOfTests"))
    yield "unknown top-level field", m(lambda d: d.update(timestamp="now"))
    yield "absolute source path", m(lambda d: t0(d).update(source="/home/x/spec.vspec:3"))
    yield "duplicate flag", m(lambda d: t0(d).update(flags=["InvalidInput", "InvalidInput"]))
    yield "empty steps", m(lambda d: t0(d).update(steps=[]))
    yield "bad step kind", m(lambda d: t0(d)["steps"][0].update(kind="wish"))
    yield "precondition among steps", m(lambda d: t0(d)["steps"][0].update(kind="precondition"))
    yield "group without requirements", m(lambda d: d["testGroups"][0].update(requirements=[]))
    yield "bad revision", m(lambda d: d["module"].update(revision="abc"))
    yield "boolean where an integer goes", m(lambda d: d.update(numberOfTests=True))


@pytest.mark.parametrize("i", range(13))
def test_builtin_validator_agrees_with_jsonschema_on_broken_documents(doc, i) -> None:
    name, broken = list(_mutations(doc))[i]
    assert list(jsonschema.Draft202012Validator(SCHEMA).iter_errors(broken)), name
    assert errors(broken, SCHEMA), name


def test_header_counts_and_ids(doc, swiotlb) -> None:
    tests = [t for g in doc["testGroups"] for t in g["tests"]]
    checks = list(swiotlb.all_checks())
    # one test per check, numbered 1..N in file order, counted in the header
    assert doc["numberOfTests"] == len(tests) == len(checks)
    assert [t["tcId"] for t in tests] == list(range(1, len(tests) + 1))
    assert sorted(t["checkId"] for t in tests) == sorted(c.id for c in checks)
    assert doc["module"]["source"] == "spec/swiotlb.vspec"
    assert doc["module"]["base"] == "virtio-v1.4-cs01"


def test_every_statement_is_listed_and_untestable_ones_have_no_tests(doc, swiotlb) -> None:
    reqs = doc["requirements"]
    assert set(reqs) == {st.id for st in swiotlb.all_statements()}
    tested = {t["requirement"] for g in doc["testGroups"] for t in g["tests"]}
    for st in swiotlb.all_statements():
        r = reqs[st.id]
        assert r["fingerprint"] == st.fingerprint
        assert r["label"] == f"{st.role}normative:{st.block_path}"
        assert r["testable"] is (st.untestable is None)
        assert (st.id in tested) is bool(st.checks)


def test_groups_name_what_they_exercise(doc) -> None:
    for g in doc["testGroups"]:
        named = {r["id"] for r in g["requirements"]}
        assert named == {t["requirement"] for t in g["tests"]}
        assert all(r["fingerprint"] == doc["requirements"][r["id"]]["fingerprint"]
                   for r in g["requirements"])


def test_spec_rules_show_in_groups_and_flags(doc) -> None:
    by_check = {t["checkId"]: (g, t) for g in doc["testGroups"] for t in g["tests"]}
    # "check outside-readable": result invalid, any device, SWIOTLB offered and negotiated
    g, t = by_check["swiotlb.dev.no-access-outside/outside-readable"]
    assert t["result"] == "invalid" and "InvalidInput" in t["flags"]
    assert g["target"] == "device" and g["deviceType"] is None and g["type"] == "DeviceConformance"
    assert g["features"] == {"offer": ["VIRTIO_F_SWIOTLB"], "negotiate": ["VIRTIO_F_SWIOTLB"]}
    sub = next(s for s in t["steps"] if s["verb"] == "submit_descriptor")
    assert sub["args"] == {"addr": "outside", "len": 512}
    # "given target driver" makes a driver group
    g, t = by_check["swiotlb.drv.buffers-inside/addresses-in-region"]
    assert g["type"] == "DriverConformance" and "DriverUnderTest" in t["flags"]
    # the MAY statement's check is 'acceptable' and flagged as a permission
    g, t = by_check["swiotlb.rfb.dev.may-fail/without-swiotlb"]
    assert t["result"] == "acceptable" and {"EitherOutcome", "Permission"} <= set(t["flags"])
    # integer arguments are integers, hex included (len=0xfffff000)
    g, t = by_check["swiotlb.dev.no-access-outside/length-wraps"]
    sub = next(s for s in t["steps"] if s["verb"] == "submit_descriptor")
    assert sub["args"]["len"] == 0xFFFFF000 and sub["args"]["flags"] == ["write"]
    # every flag used is explained in the notes
    used = {f for g in doc["testGroups"] for t in g["tests"] for f in t["flags"]}
    assert used == set(doc["notes"])


def test_source_positions_point_at_the_check_lines(doc) -> None:
    lines = SWIOTLB.read_text().splitlines()
    for g in doc["testGroups"]:
        for t in g["tests"]:
            line = int(t["source"].rsplit(":", 1)[1])
            name = t["checkId"].split("/", 1)[1]
            assert f"check {name}" in lines[line - 1]


def test_vectors_are_byte_identical_across_runs_and_working_directories(tmp_path: Path) -> None:
    outs = []
    for i, cwd in enumerate([ROOT, tmp_path]):
        out = tmp_path / f"out{i}"
        proc = subprocess.run([sys.executable, "-m", "specc.cli", "vectors", str(SWIOTLB),
                               "-o", str(out)], cwd=cwd, capture_output=True, text=True,
                              env=dict(os.environ, PYTHONHASHSEED=str(i + 1)))
        assert proc.returncode == 0, proc.stderr
        outs.append((out / "swiotlb.json").read_bytes())
    assert outs[0] == outs[1]
    assert b"/work/" not in outs[0] and str(tmp_path).encode() not in outs[0]
