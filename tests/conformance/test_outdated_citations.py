"""A cited upstream statement reworded: once its new wording is recorded,
vectors made before are OUTDATED for exactly that statement's checks.

The tree is tests/fixtures/spec-tree-mini (real v1.4-cs01 labels); the
module cites two statements of one block, each with driver checks the
reference driver passes."""
from __future__ import annotations

import json
import shutil

from conformance.cli import main as conformance_main
from specc.cli import main as specc_main
from tests.spec_trees import MINI, reword

LABEL = "drivernormative:Reserved Feature Bits"
MODULE = f'''module cited {{
  kind baseline
  title "Citations"
  base "virtio-v1.4-cs01"
}}

cite t.rfb.drv.version MUST in "{LABEL}" at "accept VIRTIO_F_VERSION_1" {{
  check accepts-v1 {{
    result valid
    given target driver
    driver_io count=1
    expect accepted has VIRTIO_F_VERSION_1
  }}
}}

cite t.rfb.drv.subset MUST in "{LABEL}" at 4 {{
  check offered-only {{
    result valid
    given target driver
    expect accepted_subset
  }}
  check offered-only-again {{
    result valid
    given target driver
    driver_io count=2
    expect accepted_subset
  }}
}}
'''


def _specc(*argv: str) -> None:
    assert specc_main(list(argv)) == 0, argv


def test_reworded_cited_statement_outdates_exactly_its_vectors(tmp_path, capsys):
    spec = tmp_path / "spec"
    spec.mkdir()
    module = spec / "cited.vspec"
    module.write_text(MODULE, encoding="utf-8")
    _specc("ids", "--update", "--spec-tree", str(MINI), str(module))
    _specc("vectors", "-o", str(tmp_path / "before"), str(module))

    tree = tmp_path / "tree"
    shutil.copytree(MINI, tree)
    reword(tree, "Without\nVIRTIO_F_ACCESS_PLATFORM a driver MUST pass only physical addresses.",
           "Without VIRTIO_F_ACCESS_PLATFORM a driver MUST pass physical addresses only.")
    # the new tree: specc check names the statement and its checks ...
    assert specc_main(["check", "--spec-tree", str(tree), str(module)]) == 2
    err = capsys.readouterr().err
    assert "OUTDATED" in err and "t.rfb.drv.subset/offered-only, t.rfb.drv.subset/offered-only-again" in err
    assert "t.rfb.drv.version" not in err
    # ... and once the new wording is recorded, the old vectors are OUTDATED for those checks only
    _specc("ids", "--update", "--spec-tree", str(tree), str(module))
    _specc("vectors", "-o", str(tmp_path / "after"), str(module))
    capsys.readouterr()
    report = tmp_path / "report.json"
    rc = conformance_main(["run", "--device", "ref", "--vectors", str(tmp_path / "before"),
                           "--current", str(tmp_path / "after"), "--layout", "split",
                           "--format", "json", "-o", str(report), "-q"])
    assert rc == 0
    results = json.loads(report.read_text(encoding="utf-8"))["results"]
    outdated = sorted(r["checkId"] for r in results if r["outdated"])
    assert outdated == ["t.rfb.drv.subset/offered-only", "t.rfb.drv.subset/offered-only-again"]
    assert all(r["reason"].startswith("OUTDATED: statement t.rfb.drv.subset changed")
               for r in results if r["outdated"])
    others = {r["checkId"]: r["verdict"] for r in results if not r["outdated"]}
    assert others == {"t.rfb.drv.version/accepts-v1": "PASS"}
