"""One docs site, built as `./dev.sh main` builds it (every module, the guides, the
benchmark chart, a real conformance report, the coverage page against a spec tree),
shared by the tests of this folder."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.spec_trees import MINI

ROOT = Path(__file__).resolve().parents[2]


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=600)


def spec_tree() -> Path:
    """The real upstream tree when the environment names one, else the mini fixture."""
    real = os.environ.get("VIRTIO_SPEC_TREE")
    if real and (Path(real) / "virtio.tex").is_file():
        return Path(real)
    return MINI


@pytest.fixture(scope="session")
def built_site(tmp_path_factory) -> Path:
    work = tmp_path_factory.mktemp("docs-site")
    vectors = work / "vectors"
    proc = run("specc.cli", "vectors", "spec", "-o", str(vectors))
    assert proc.returncode == 0, proc.stderr
    reports = work / "reports"
    # a real report of the reference device: the SWIOTLB and reset statements, split ring
    proc = run("conformance.cli", "run", "--device", "ref", "--vectors", str(vectors),
               "--only", "swiotlb.*", "base.reset.*", "--layout", "split", "-q",
               "--json", str(reports / "ref.json"))
    assert proc.returncode in (0, 1), proc.stderr
    assert json.loads((reports / "ref.json").read_text())["device"] == "ref"
    site = work / "site"
    proc = run("specc.cli", "docs", "spec", "-o", str(site), "--report", str(reports),
               "--assets", str(ROOT / "docs" / "protection"), "--guides", str(ROOT / "docs"),
               "--spec-tree", str(spec_tree()))
    assert proc.returncode == 0, proc.stderr
    return site
