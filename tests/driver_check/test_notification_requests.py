"""Notifications judged against what the device asked for. With
``vary_notifications`` the checking device asks for a notification after
one processing pass and suppresses them after the next; while asking it
sets the field that does not apply to "suppress" (split: avail_event
without EVENT_IDX, the used flags' low bit with it), which a driver must
disregard. The caller polls, so a quiet driver still gets served."""
from __future__ import annotations

import pytest

from conformance.driver_mode import workload
from device_ref.driver.core import ALL

from .rigs import F_EVENT_IDX, make, split_read_chain


def varying(**kw):
    r = make(init=False, **kw)
    r.device.vary_notifications = True
    r.driver.init()
    return r


@pytest.mark.parametrize("event_idx", [False, True], ids=["flags", "event-idx"])
@pytest.mark.parametrize("packed", [False, True], ids=["split", "packed"])
def test_reference_driver_follows_each_request(packed, event_idx):
    features = ALL if event_idx else ALL & ~(1 << F_EVENT_IDX)
    r = varying(packed=packed, features=features)
    try:
        assert bool(r.device.negotiated >> F_EVENT_IDX & 1) == event_idx
        workload(r.driver, "blk", 64, poll=lambda: r.device.poll(0))
        assert r.log.violations == [], [(v.property, v.detail) for v in r.log.violations]
        q = r.log.queues[0]
        # Both kinds of pass happened: some requests were kicked, others were
        # left quiet (as asked) and found by the poll.
        assert 0 < q.kicks < q.chains == 64
        assert q.kicks_while_suppressed == 0
    finally:
        r.close()


def _pass(r, raw, first):
    split_read_chain(r, raw, first)
    raw.publish([first])
    r.kick()


@pytest.mark.parametrize("event_idx", [False, True], ids=["flags", "event-idx"])
def test_kick_while_suppressed_is_counted(event_idx):
    """After placing a buffer the driver SHOULD NOT notify while the device
    suppresses notifications (used flags 1, or avail_event not crossed)."""
    features = ALL if event_idx else ALL & ~(1 << F_EVENT_IDX)
    r = varying(features=features)
    try:
        raw = r.raw()
        _pass(r, raw, 0)      # pass 1 ends asking
        _pass(r, raw, 3)      # pass 2 ends suppressing
        assert not r.log.violations
        _pass(r, raw, 6)      # a kick the device did not want
        v = r.log.of("driver_queues quiet_when_suppressed")
        assert len(v) == 1 and v[0].level == "should"
        assert r.log.queues[0].kicks_while_suppressed == 1
    finally:
        r.close()


@pytest.mark.parametrize("event_idx", [False, True], ids=["flags", "event-idx"])
def test_quiet_while_asked_is_caught_at_the_poll(event_idx):
    """While the device asks (and the other field says 'suppress', a decoy),
    a new buffer MUST be followed by a notification."""
    features = ALL if event_idx else ALL & ~(1 << F_EVENT_IDX)
    r = varying(features=features)
    try:
        raw = r.raw()
        _pass(r, raw, 0)                 # pass 1 ends asking, decoy set
        split_read_chain(r, raw, 3)
        raw.publish([3])                 # a driver reading the decoy stays quiet
        r.device.poll(0)
        only = {v.property for v in r.log.violations}
        assert only == {"driver_queues notifies_when_asked"}
        assert len(raw.take_used()) == 2, "the poll still served the buffer"
    finally:
        r.close()
