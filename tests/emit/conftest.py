from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.spec_trees import MINI, make_repo, upstream_copy

ROOT = Path(__file__).resolve().parents[2]
SWIOTLB = ROOT / "spec" / "swiotlb.vspec"


def specc(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    """Run the specc command line as a user would (its own process)."""
    return subprocess.run([sys.executable, "-m", "specc.cli", *args], cwd=cwd,
                          capture_output=True, text=True)


@pytest.fixture(scope="session")
def swiotlb():
    from specc.load import load
    loaded = load([str(SWIOTLB)])
    assert not [d for d in loaded.diagnostics if d.is_error]
    return loaded.modules[0]


@pytest.fixture
def mini_repo(tmp_path: Path) -> Path:
    """The upstream-tree helper's mini fixture as a fresh git checkout."""
    return make_repo(MINI, tmp_path / "mini")


@pytest.fixture
def upstream_tree(tmp_path: Path) -> Path:
    """A copy of a real virtio-spec checkout (VIRTIO_SPEC_TREE), never the original."""
    return upstream_copy(tmp_path / "upstream")
