"""Git repositories made from fixture trees, for the patch tests."""
from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

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




def clean_clone(repo: Path, dest: Path) -> Path:
    """A fresh checkout of repo's HEAD (the base the series must apply to)."""
    subprocess.run(["git", "clone", "-q", str(repo), str(dest)], check=True, env=GIT_ENV,
                   capture_output=True)
    head = git(repo, "rev-parse", "HEAD").strip()
    git(dest, "checkout", "-q", "--detach", head)
    return dest
