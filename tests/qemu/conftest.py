"""Vectors for the QEMU judges, compiled once per session like the
conformance tests' (tests/conformance/conftest.py)."""
from __future__ import annotations

from pathlib import Path

import pytest

from conformance.vectors import load_suite
from tests.conformance.conftest import compile_vectors


@pytest.fixture(scope="session")
def suite(tmp_path_factory):
    vectors: Path = compile_vectors(tmp_path_factory.mktemp("qemu-vectors"))
    return load_suite(vectors)
