"""The hang guard: a step that makes progress is not a hung device."""
from __future__ import annotations

import time

import pytest

from conformance.watchdog import Hung, guard, progress


def test_a_step_that_keeps_making_progress_outlives_the_guard_time():
    with guard(0.3):
        for _ in range(8):          # 0.4 s in all, never 0.3 s without progress
            time.sleep(0.05)
            progress()


def test_a_step_without_progress_is_stopped():
    with pytest.raises(Hung, match="made no progress for 0.1 s"):
        with guard(0.1):
            time.sleep(2)


def test_progress_outside_a_guard_does_nothing():
    progress()
    time.sleep(0.01)
