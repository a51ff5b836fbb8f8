"""Fixtures of the arm64 restricted-dma-pool guest: the kernel (built once,
cached), the initramfs and the device trees, shared by the module."""
from __future__ import annotations

import pytest

from tests.driver_check.conftest import vectors_dir  # noqa: F401  (re-exported fixture)

from . import kernel as k


@pytest.fixture(scope="session")
def arm64_kernel() -> k.KernelBuild:
    try:
        return k.build_kernel()
    except k.KernelBuildError as exc:
        pytest.fail(f"cannot build the arm64 kernel: {exc}")
