"""Spec trees the tests work on: the mini fixture tree as a fresh git
checkout, and the real upstream checkout that VIRTIO_SPEC_TREE names (a
virtio-spec v1.4-cs01 tree; tests that need it skip without it)."""
from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

MINI = Path(__file__).resolve().parent / "fixtures" / "spec-tree-mini"

# Fixed identity and dates: commits (and the patches made from them) come out
# the same on every machine and every run.
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


def upstream_checkout() -> Path:
    """The real checkout VIRTIO_SPEC_TREE names (read only); skips the test
    that asks when the variable is not set."""
    path = os.environ.get("VIRTIO_SPEC_TREE")
    if not path:
        pytest.skip("VIRTIO_SPEC_TREE is not set (point it at a virtio-spec v1.4-cs01 checkout)")
    return Path(path)


def upstream_copy(dest: Path) -> Path:
    """A copy of the real checkout at dest, for tests that write into it."""
    shutil.copytree(upstream_checkout(), dest, symlinks=True)
    return dest


def reword(tree: Path, old: str, new: str, file: str = "content.tex") -> Path:
    """Rewrite one passage of a copied tree (it must stand there exactly
    once), as upstream rewording a sentence would; returns the tree."""
    path = tree / file
    text = path.read_text(encoding="utf-8")
    assert text.count(old) == 1, f"{old!r} stands {text.count(old)} times in {path}"
    path.write_text(text.replace(old, new), encoding="utf-8")
    return tree
