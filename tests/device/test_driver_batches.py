"""The driver keeps a queue full: ``kicks_held`` hands several requests over
with one kick, ``wait_any`` returns what completed so the caller can
submit anew."""
from __future__ import annotations

import pytest

from device_ref.driver.errors import DriverError

from .harness import Combo, blk_pair


def test_requests_submitted_with_kicks_held_reach_the_device_together():
    dev, t, drv, storage = blk_pair(Combo(event_idx=False))
    drv.init()
    kicks, served = drv.counters.kicks, dev.counters.requests
    with drv.kicks_held():
        reqs = [drv.submit_read(8 * k, 512) for k in range(6)]
        with drv.kicks_held():          # nested: still one kick, at the outer end
            reqs.append(drv.submit_read(0, 512))
        assert drv.counters.kicks == kicks and dev.counters.requests == served
    assert drv.counters.kicks == kicks + 1
    assert dev.counters.requests == served + 7
    for r in reqs:
        assert drv.wait(r).data == b"\0" * 512 + b"\0"


def test_wait_any_returns_the_completed_requests_for_resubmission():
    dev, t, drv, storage = blk_pair(Combo())
    drv.init()
    storage.data[:4096] = bytes(range(256)) * 16
    with drv.kicks_held():
        reqs = [drv.submit_read(k, 512) for k in range(4)]
    done = drv.wait_any(0)
    assert sorted(r.token for r in done) == sorted(r.token for r in reqs)
    assert all(r.done and r.error is None for r in done)
    assert [r.data[:-1] for r in sorted(done, key=lambda r: r.token)] == \
        [bytes(storage.data[512 * k:512 * (k + 1)]) for k in range(4)]
    with pytest.raises(DriverError, match="nothing in flight"):
        drv.wait_any(0)


@pytest.mark.parametrize("group,interrupts", [(0, 1), (2, 3), (4, 2)])
def test_a_device_completing_in_groups_interrupts_after_each(group, interrupts):
    dev, t, drv, storage = blk_pair(Combo(event_idx=False))
    dev.completion_batch = group
    drv.init()
    storage.data[:3072] = bytes(range(256)) * 12
    before = dev.counters.queue_interrupts
    with drv.kicks_held():
        reqs = [drv.submit_read(k, 512) for k in range(6)]
    assert dev.counters.queue_interrupts - before == interrupts
    assert [drv.wait(r).data[:-1] for r in reqs] == \
        [bytes(storage.data[512 * k:512 * (k + 1)]) for k in range(6)]
