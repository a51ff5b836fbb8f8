from __future__ import annotations

from pathlib import Path

import pytest

from tests import spec_trees


@pytest.fixture
def mini_repo(tmp_path) -> Path:
    return spec_trees.make_repo(spec_trees.MINI, tmp_path / "mini")


@pytest.fixture
def upstream_copy(tmp_path) -> Path:
    """A copy of a real v1.4-cs01 checkout (VIRTIO_SPEC_TREE), never the original."""
    return spec_trees.upstream_copy(tmp_path / "upstream")
