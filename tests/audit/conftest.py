from __future__ import annotations

from pathlib import Path

import pytest

from tests.spec_trees import upstream_checkout

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


@pytest.fixture
def planted_tree() -> Path:
    return FIXTURES / "audit-tree"


@pytest.fixture
def clean_tree() -> Path:
    return FIXTURES / "audit-tree-clean"


@pytest.fixture
def upstream_tree() -> Path:
    return upstream_checkout()
