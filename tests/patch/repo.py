"""Git repositories made from fixture trees, for the patch tests (the
fixture trees and git set-up themselves are in tests/spec_trees.py)."""
from __future__ import annotations

import subprocess
from pathlib import Path

from tests.spec_trees import GIT_ENV, git


def clean_clone(repo: Path, dest: Path) -> Path:
    """A fresh checkout of repo's HEAD (the base the series must apply to)."""
    subprocess.run(["git", "clone", "-q", str(repo), str(dest)], check=True, env=GIT_ENV,
                   capture_output=True)
    head = git(repo, "rev-parse", "HEAD").strip()
    git(dest, "checkout", "-q", "--detach", head)
    return dest
