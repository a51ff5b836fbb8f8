"""Session-wide, expensive set-up shared by several test packages.

Building every prefix of a series on the real v1.4-cs01 tree runs XeLaTeX
about ten times (minutes on a loaded machine): each proposal's series is
built once per session, here, and every test that needs a built series
reads the result."""
from __future__ import annotations

import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.spec_trees import upstream_checkout

ROOT = Path(__file__).resolve().parents[1]
SIGNOFF = "Ada Author <ada@author.test>"


@dataclass
class BuiltSeries:
    proc: subprocess.CompletedProcess
    out: Path
    tree: Path                     # the checkout it was made from (only read)


def _build(module: str, tmp_factory, *extra: str) -> BuiltSeries:
    tree = upstream_checkout()
    if shutil.which("xelatex") is None:
        pytest.skip("xelatex is not installed (texlive-xetex)")
    out = tmp_factory.mktemp("built") / "out"
    proc = subprocess.run([sys.executable, "-m", "specc.cli", "patch", str(ROOT / module),
                           "--spec-tree", str(tree), "-o", str(out), "--signoff", SIGNOFF,
                           "--build", *extra], cwd=ROOT, capture_output=True, text=True)
    return BuiltSeries(proc, out, tree)


@pytest.fixture(scope="session")
def swiotlb_built(tmp_path_factory) -> BuiltSeries:
    """specc patch --build --version 2 of spec/swiotlb.vspec on VIRTIO_SPEC_TREE."""
    return _build("spec/swiotlb.vspec", tmp_path_factory, "--version", "2")


@pytest.fixture(scope="session")
def qenc_built(tmp_path_factory) -> BuiltSeries:
    """specc patch --build of spec/queue_encryption.vspec on VIRTIO_SPEC_TREE."""
    return _build("spec/queue_encryption.vspec", tmp_path_factory)
