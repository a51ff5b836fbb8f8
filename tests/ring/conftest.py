"""Fixtures for ring tests: every test runs on both backends."""
from __future__ import annotations

import pytest

from device_ref.ring import c_available


@pytest.fixture(params=["python", "c"])
def backend(request) -> str:
    if request.param == "c" and not c_available():
        pytest.fail("C ring core is not built: run `.venv/bin/pip install -e .`")
    return request.param
