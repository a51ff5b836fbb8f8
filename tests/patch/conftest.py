from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

MINI = Path(__file__).resolve().parents[1] / "fixtures" / "spec-tree-mini"

GIT_ENV = dict(os.environ, GIT_AUTHOR_NAME="Fixture", GIT_AUTHOR_EMAIL="fixture@example.org",
               GIT_COMMITTER_NAME="Fixture", GIT_COMMITTER_EMAIL="fixture@example.org",
               GIT_AUTHOR_DATE="2026-04-08T12:00:00+00:00",
               GIT_COMMITTER_DATE="2026-04-08T12:00:00+00:00", GIT_CONFIG_NOSYSTEM="1")


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=cwd, env=GIT_ENV, check=True,
                          capture_output=True, text=True).stdout


def make_repo(src: Path, dest: Path) -> Path:
    """A git checkout of the files in src (a fixture directory) at dest."""
    shutil.copytree(src, dest)
    git(dest, "init", "-q", "-b", "main")
    git(dest, "add", "-A")
    git(dest, "-c", "commit.gpgsign=false", "commit", "-q", "-m", "mini tree")
    return dest


@pytest.fixture
def mini_repo(tmp_path) -> Path:
    return make_repo(MINI, tmp_path / "mini")


@pytest.fixture
def upstream_copy(tmp_path) -> Path:
    """A copy of a real v1.4-cs01 checkout (VIRTIO_SPEC_TREE), never the original."""
    path = os.environ.get("VIRTIO_SPEC_TREE")
    if not path:
        pytest.skip("VIRTIO_SPEC_TREE is not set (point it at a virtio-spec v1.4-cs01 checkout)")
    dest = tmp_path / "upstream"
    shutil.copytree(path, dest, symlinks=True)
    return dest


def clean_clone(repo: Path, dest: Path) -> Path:
    """A fresh checkout of repo's HEAD (the base the series must apply to)."""
    subprocess.run(["git", "clone", "-q", str(repo), str(dest)], check=True, env=GIT_ENV,
                   capture_output=True)
    head = git(repo, "rev-parse", "HEAD").strip()
    git(dest, "checkout", "-q", "--detach", head)
    return dest
