from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SWIOTLB = ROOT / "spec" / "swiotlb.vspec"
MINI = ROOT / "tests" / "fixtures" / "spec-tree-mini"
GIT_ENV = dict(os.environ, GIT_AUTHOR_NAME="Fixture", GIT_AUTHOR_EMAIL="fixture@example.org",
               GIT_COMMITTER_NAME="Fixture", GIT_COMMITTER_EMAIL="fixture@example.org",
               GIT_CONFIG_NOSYSTEM="1")


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=cwd, env=GIT_ENV, check=True,
                          capture_output=True, text=True).stdout


@pytest.fixture(scope="session")
def swiotlb():
    from specc.load import load
    loaded = load([str(SWIOTLB)])
    assert not [d for d in loaded.diagnostics if d.is_error]
    return loaded.modules[0]


@pytest.fixture
def mini_repo(tmp_path: Path) -> Path:
    """The upstream-tree helper's mini fixture as a fresh git checkout."""
    dest = tmp_path / "mini"
    shutil.copytree(MINI, dest)
    git(dest, "init", "-q", "-b", "main")
    git(dest, "add", "-A")
    git(dest, "-c", "commit.gpgsign=false", "commit", "-q", "-m", "mini tree")
    return dest


@pytest.fixture
def upstream_tree(tmp_path: Path) -> Path:
    """A copy of a real virtio-spec checkout (VIRTIO_SPEC_TREE), never the original."""
    path = os.environ.get("VIRTIO_SPEC_TREE")
    if not path:
        pytest.skip("VIRTIO_SPEC_TREE is not set (point it at a virtio-spec v1.4-cs01 checkout)")
    dest = tmp_path / "upstream"
    shutil.copytree(path, dest, symlinks=True)
    return dest
