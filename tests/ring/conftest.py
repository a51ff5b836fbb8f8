"""Fixtures for ring tests: every test runs on both backends, against a fresh C build."""
from __future__ import annotations

import functools

import pytest

from device_ref.ring import c_available
from device_ref.ring.backend import c_stale


@functools.lru_cache(maxsize=1)
def _c_problem() -> str | None:
    if not c_available():
        return "C ring core is not built: run `.venv/bin/pip install -e .`"
    if c_stale():
        return "C ring core was built from older ring.c/ring.h: rerun `.venv/bin/pip install -e .`"
    return None


@pytest.fixture(autouse=True)
def _fresh_c_core() -> None:
    problem = _c_problem()
    if problem:
        pytest.fail(problem)


@pytest.fixture(params=["python", "c"])
def backend(request) -> str:
    return request.param
