"""`specc audit --coverage`: which upstream blocks our modules restate and test.

The tree is tests/fixtures/spec-tree-mini (its labels are real v1.4-cs01
labels, so a baseline module may restate them); the module and the vector
file are written here, and the expected figures are counted from the
fixture text in the comments."""
from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

import jsonschema
import pytest

from specc.cli import main

MINI = Path(__file__).resolve().parents[1] / "fixtures" / "spec-tree-mini"

BASELINE = '''
module fixture_baseline {
  kind baseline
  title "Feature negotiation (restated for the coverage test)"
  base "virtio-v1.4-cs01"
}

driver requirements "Basic Facilities of a Virtio Device / Feature Bits" {
  req fixture.fn.drv.no-unoffered MUST NOT {
    """The driver MUST NOT accept a feature that the device did not offer."""
    check only-offered {
      result valid
      given target driver
      given offered VIRTIO_F_VERSION_1
      expect accepted lacks VIRTIO_F_RING_PACKED
    }
  }
}

device requirements "Reserved Feature Bits" {
  req fixture.rfb.dev.offer-v1 MUST {
    """A device MUST offer VIRTIO_F_VERSION_1."""
    untestable "kept untested on purpose for the coverage test"
  }
}

driver requirements "Basic Facilities of a Virtio Device / Device Status Field" {
  req fixture.ds.drv.no-clear MUST NOT {
    """The driver MUST NOT clear a device status bit."""
    untestable "the mini tree has no such block: it shows up as unknown"
  }
}
'''


def vectors(with_tests: list[tuple[str, str]], without: list[tuple[str, str]]) -> dict:
    """A vector file (only the parts coverage reads): groups naming (id, label)."""
    def group(rid: str, label: str, tests: list) -> dict:
        return {"requirements": [{"id": rid, "fingerprint": "0123abcd", "label": label}],
                "tests": tests}
    return {"schema": "virtio-specc-vectors",
            "testGroups": [group(i, lab, [{"tcId": 1}]) for i, lab in with_tests]
            + [group(i, lab, []) for i, lab in without]}


@pytest.fixture
def spec_dir(tmp_path) -> Path:
    d = tmp_path / "spec"
    d.mkdir()
    (d / "baseline.vspec").write_text(BASELINE)
    return d


def run_json(capsys, *args: str) -> dict:
    rc = main(["audit", "--spec-tree", str(MINI), "--coverage", "--format", "json", *args])
    assert rc == 1  # the mini tree keeps upstream's VIRTIO_F_ADMIN_VQ(41) finding
    doc = json.loads(capsys.readouterr().out)
    schema = json.loads(resources.files("specc").joinpath("schemas/audit.schema.json").read_text())
    jsonschema.validate(doc, schema)
    return doc["coverage"]


def chapter(cov: dict, name: str) -> dict:
    return next(c for c in cov["chapters"] if c["chapter"] == name)


def test_coverage_tested_by_checks(spec_dir, capsys):
    cov = run_json(capsys, "--spec", str(spec_dir))
    basic = chapter(cov, "Basic Facilities of a Virtio Device")
    # two Feature Bits blocks, one MUST NOT each; the driver one is restated and has a check
    assert {k: basic[k] for k in ("blocks", "blocks_restated", "blocks_tested")} == \
        {"blocks": 2, "blocks_restated": 1, "blocks_tested": 1}
    assert (basic["keywords"], basic["keywords_restated"], basic["keywords_tested"]) == (2, 1, 1)
    rfb = chapter(cov, "Reserved Feature Bits")
    # driver block: MUST, SHOULD, MUST, MUST, MUST, SHOULD, MUST (ORDER_PLATFORM);
    # device block: MUST, MAY. Only the
    # device one is restated, by one statement with one keyword (MUST), and it
    # is untestable.
    assert (rfb["blocks"], rfb["blocks_restated"], rfb["blocks_tested"]) == (2, 1, 0)
    assert (rfb["keywords"], rfb["keywords_restated"], rfb["keywords_tested"]) == (9, 1, 0)
    # 13 blocks in the mini tree, 2 restated
    assert cov["totals"]["blocks"] == 13 and len(cov["missing"]) == 11
    assert "devicenormative:Reserved Feature Bits" not in {m["label"] for m in cov["missing"]}
    assert cov["unknown"] == [
        "drivernormative:Basic Facilities of a Virtio Device / Device Status Field"]


def test_coverage_tested_by_vectors(spec_dir, tmp_path, capsys):
    vec = tmp_path / "vectors"
    vec.mkdir()
    (vec / "a.json").write_text(json.dumps(vectors(
        [("fixture.rfb.dev.offer-v1", "devicenormative:Reserved Feature Bits")],
        [("fixture.fn.drv.no-unoffered",
          "drivernormative:Basic Facilities of a Virtio Device / Feature Bits")])))
    (vec / "report.json").write_text("[1, 2]")  # other JSON is not a vector file
    cov = run_json(capsys, "--spec", str(spec_dir), "--vectors", str(vec))
    # a group without tests tests nothing; the vectors, not the checks, decide
    assert chapter(cov, "Basic Facilities of a Virtio Device")["blocks_tested"] == 0
    rfb = chapter(cov, "Reserved Feature Bits")
    assert (rfb["blocks_tested"], rfb["keywords_tested"]) == (1, 1)


def test_a_group_naming_only_the_label_tests_the_whole_block(spec_dir, tmp_path, capsys):
    vec = tmp_path / "vectors"
    vec.mkdir()
    (vec / "b.json").write_text(json.dumps(vectors(
        [("someone.else.id", "drivernormative:Basic Facilities of a Virtio Device / Feature Bits")], [])))
    cov = run_json(capsys, "--spec", str(spec_dir), "--vectors", str(vec))
    basic = chapter(cov, "Basic Facilities of a Virtio Device")
    assert (basic["blocks_tested"], basic["keywords_tested"]) == (1, 1)
    assert chapter(cov, "Reserved Feature Bits")["blocks_tested"] == 0


def test_coverage_text_lists_what_we_do_not_restate(spec_dir, capsys):
    assert main(["audit", "--spec-tree", str(MINI), "--coverage", "--spec", str(spec_dir)]) == 1
    out = capsys.readouterr().out
    assert "not restated (11):" in out
    assert "transport-mmio.tex:14: drivernormative:Virtio Transport Options / Virtio Over MMIO / " \
           "MMIO Device Register Layout" in out
    assert "restated but not tested:\n  devicenormative:Reserved Feature Bits" in out


def test_broken_module_or_vectors_exit_2(spec_dir, tmp_path, capsys):
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "x.vspec").write_text("module x { kind nonsense }\n")
    assert main(["audit", "--spec-tree", str(MINI), "--coverage", "--spec", str(bad)]) == 2
    assert "x.vspec" in capsys.readouterr().err
    vec = tmp_path / "vec"
    vec.mkdir()
    (vec / "v.json").write_text("{not json")
    assert main(["audit", "--spec-tree", str(MINI), "--coverage", "--spec", str(spec_dir),
                 "--vectors", str(vec)]) == 2
    err = capsys.readouterr().err
    assert "v.json" in err and err.count("\n") == 1
