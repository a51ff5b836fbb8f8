from __future__ import annotations

import os
from pathlib import Path

import pytest

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


@pytest.fixture
def planted_tree() -> Path:
    return FIXTURES / "audit-tree"


@pytest.fixture
def clean_tree() -> Path:
    return FIXTURES / "audit-tree-clean"


@pytest.fixture
def upstream_tree() -> Path:
    path = os.environ.get("VIRTIO_SPEC_TREE")
    if not path:
        pytest.skip("VIRTIO_SPEC_TREE is not set (point it at a virtio-spec v1.4-cs01 checkout)")
    return Path(path)
