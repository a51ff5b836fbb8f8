"""A guard against a device that never returns control.

Step timeouts bound every wait the harness does; they cannot stop a device
that loops forever inside a call (an in-process device runs on the
runner's thread). ``guard(seconds)`` arms SIGALRM around one step and turns
its expiry into ``Hung``, which the runner reports as WEDGED; ``progress()``
re-arms it whenever the device completes something. It only arms
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


_armed = 0.0          # the guard time of the step running now (0: none)


@contextmanager
def guard(seconds: float):
    global _armed
    if seconds <= 0 or not _usable():
        yield
        return

    def expire(signum, frame):  # noqa: ARG001
        raise Hung(f"made no progress for {seconds:g} s")

    previous = signal.signal(signal.SIGALRM, expire)
    _armed = seconds
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        _armed = 0.0
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def progress() -> None:
    """The step is getting somewhere (the device completed requests): the
    guard counts again from now, so a long step (65,540 requests on a loaded
    machine) is not taken for a hung device."""
    if _armed > 0 and _usable():
        signal.setitimer(signal.ITIMER_REAL, _armed)
