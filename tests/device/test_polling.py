"""A device that polls after a kick (``poll_s``, `device-ref serve
--poll-us`) serves buffers the driver adds meanwhile without another kick;
one that does not, leaves them to the next kick."""
from __future__ import annotations

import subprocess
import sys
import threading
import time

import pytest

from device_ref.devices.blk import BlkDevice

from .harness import Combo, blk_pair


class Spy(BlkDevice):
    """Records, for each call of notify, how many requests were served by its end."""

    def __init__(self, *args, **kw) -> None:
        super().__init__(*args, **kw)
        self.ends: list[tuple[int, int]] = []

    def notify(self, queue: int) -> None:
        super().notify(queue)
        self.ends.append((threading.get_ident(), self.counters.requests))


@pytest.mark.parametrize("poll_s", [0.0, 2.0])
def test_buffers_added_while_polling_are_served_by_the_same_kick(poll_s):
    dev, t, drv, _ = blk_pair(Combo(), device_cls=Spy)
    drv.init()
    dev.poll_s = poll_s
    later = []

    def second() -> None:
        time.sleep(0.05)
        # the kick at the end of the block waits for the transport's lock,
        # which the first kick's notify holds while it polls
        dev.poll_s = 0.0     # the poll under way goes on; none after it
        with drv.kicks_held():
            later.append(drv.submit_read(8, 512))

    thread = threading.Thread(target=second)
    thread.start()
    started = time.monotonic()
    first = drv.submit_read(0, 512)     # kicks: notify runs here, in this thread
    thread.join()
    main = [n for ident, n in dev.ends if ident == threading.get_ident()]
    if poll_s:
        assert main[0] == 2             # the second request, with no kick of its own yet
        assert time.monotonic() - started < 1.5
    else:
        assert main[0] == 1
    drv.wait(first)
    drv.wait(later[0])
    assert dev.counters.requests == 2


def test_serve_refuses_a_poll_window_out_of_range(tmp_path):
    p = subprocess.run([sys.executable, "-m", "device_ref.cli", "serve", "--type", "blk",
                        "--socket", str(tmp_path / "s"), "--poll-us", "20000"],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 2
    assert p.stderr.strip().splitlines() == ["device-ref: error: --poll-us 20000 is not in 0..10000"]


def test_polling_stops_after_a_poll_in_vain_and_resumes_when_kicks_come_fast():
    dev, t, drv, _ = blk_pair(Combo())
    drv.init()
    dev.poll_s = 0.5

    def kick_takes() -> float:
        started = time.monotonic()
        drv.wait(drv.submit_read(0, 512))    # notify runs inside the kick
        return time.monotonic() - started

    assert kick_takes() >= 0.5          # polls, finds nothing: polling off
    time.sleep(0.7)                     # the next kick comes later than a poll would wait
    assert kick_takes() < 0.3           # no poll
    assert kick_takes() >= 0.5          # this kick came right away: polling is back on


def test_serve_refuses_a_completion_batch_out_of_range(tmp_path):
    p = subprocess.run([sys.executable, "-m", "device_ref.cli", "serve", "--type", "blk",
                        "--socket", str(tmp_path / "s"), "--completion-batch", "-1"],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 2
    assert p.stderr.strip().splitlines() == [
        "device-ref: error: --completion-batch -1 is not in 0..1024"]
