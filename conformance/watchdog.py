"""A guard against a device that never returns control.

Step timeouts bound every wait the harness does; they cannot stop a device
that loops forever inside a call (an in-process device runs on the
runner's thread). ``guard(seconds)`` arms SIGALRM around one step and turns
its expiry into ``Hung``, which the runner reports as WEDGED. It only arms
on the main thread (the only one signals reach); elsewhere it does nothing.
"""
from __future__ import annotations

import signal
import threading
from contextlib import contextmanager


class Hung(Exception):
    """The step did not return within the guard time."""


def _usable() -> bool:
    return hasattr(signal, "setitimer") and threading.current_thread() is threading.main_thread()


@contextmanager
def guard(seconds: float):
    if seconds <= 0 or not _usable():
        yield
        return

    def expire(signum, frame):  # noqa: ARG001
        raise Hung(f"did not return within {seconds:g} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
