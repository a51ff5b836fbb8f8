from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from .repo import MINI, make_repo


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
