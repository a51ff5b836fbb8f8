"""DPDK 22.11's testpmd (vhost PMD) judged as a virtio-net device.

What the suite must get right about a device it was never tuned for:
it sets up the queues a virtio-net without MQ has (two, plus a control queue
if negotiated), not the 128 GET_QUEUE_NUM reports; it puts the hostile
descriptor where a net device looks unprompted (transmitq1, never a receive
queue that only a packet arriving would touch); it names net feature bits;
and it gives FAIL or WEDGED only where a rule applied. The real finding, a
transmit queue that stalls silently after a descriptor outside memory, is
reported with its evidence.
"""
from __future__ import annotations

import re
import time

import pytest

from device_ref.device_types import device_type
from device_ref.ring.hostile import Desc, HQueue
from device_ref.ring.layout import DESC_F_WRITE, PACKED, SPLIT, QueueConfig
from device_ref.vhost_user.frontend import VhostUserTransport
from device_ref.virtio_constants import (ACKNOWLEDGE, DEVICE_NEEDS_RESET, DRIVER, DRIVER_OK,
                                         F_RING_PACKED, F_VERSION_1, FEATURES_OK)

pytestmark = [pytest.mark.thirdparty, pytest.mark.slow]

NET = device_type("net")
STALL_CHECK = "base.status.dev.set-needs-reset/descriptor-outside-memory"
# A real finding too: the first used buffer after the ring starts is always
# notified, whatever used_event says (a SHOULD NOT).
EARLY_NOTIFY_CHECK = "base.notif.dev.event-not-reached/event-far-ahead"
# And a third: without VIRTIO_NET_F_MRG_RXBUF, num_buffers (present in the
# header under VERSION_1) is never written, where the device must set 1.
NUM_BUFFERS_CHECKS = ("base.net.dev.num-buffers-one/without-merge",)
BAD_VERDICTS = ("FAIL", "WEDGED")


def test_suite_runs_to_the_end_and_every_skip_says_why(dpdk_run):
    assert dpdk_run.doc["device"].endswith("(net)")
    assert set(dpdk_run.doc["layouts"]) == {"split", "packed"}
    for r in dpdk_run.results:
        assert "unexpected error" not in r["reason"], (r["checkId"], r["reason"])
        if r["verdict"] == "SKIP":
            assert r["reason"].strip(), r["checkId"]
    assert any(r["verdict"] == "PASS" for r in dpdk_run.results)


def test_only_the_queues_of_a_net_device_without_mq_are_set_up(dpdk_run, testpmd):
    kicked = testpmd.kicked_queues()
    # receiveq1 and transmitq1; controlq (2) only where VIRTIO_NET_F_CTRL_VQ was negotiated
    assert {0, 1} <= kicked <= {0, 1, 2}, sorted(kicked)[:10]


def test_no_fail_or_wedged_where_the_rule_never_applied(dpdk_run):
    bad = [(r["layout"], r["checkId"], r["verdict"]) for r in dpdk_run.results
           if r["verdict"] in BAD_VERDICTS
           and r["checkId"] not in (STALL_CHECK, EARLY_NOTIFY_CHECK, *NUM_BUFFERS_CHECKS)]
    assert bad == []
    # the device never set DEVICE_NEEDS_RESET: the MUST that follows it did not apply
    for r in dpdk_run.by_check("base.status.dev.notify-needs-reset/notify-after-error"):
        assert r["verdict"] == "SKIP" and "condition never held" in r["reason"], r


def test_num_buffers_left_unwritten_without_mrg_rxbuf_is_reported(dpdk_run):
    for check in NUM_BUFFERS_CHECKS:
        runs = dpdk_run.by_check(check)
        assert {r["layout"] for r in runs} == {"split", "packed"}
        for r in runs:
            assert r["verdict"] == "FAIL" and r["keyword"] == "MUST", r
            assert "num_buffers says 43690 (0xaaaa" in _seen(r), r


def test_frames_come_back_through_testpmd_and_are_judged(dpdk_run):
    """testpmd forwards what it receives back out of the same port, so the
    net checks that need frames to come back run against it."""
    for check in ("base.net.dev.mtu-forward/many-frames", "base.net.dev.num-buffers-spread/spread",
                  "base.net.dev.fill-before-last/filled"):
        assert {r["verdict"] for r in dpdk_run.by_check(check)} == {"PASS"}, check


def _stall_runs(dpdk_run, layout: str) -> list[dict]:
    runs = [r for r in dpdk_run.by_check(STALL_CHECK) if r["layout"] == layout]
    assert runs, layout
    return runs


def _seen(r: dict) -> str:
    return " ".join([r["reason"], r["evidence"]["observed"], *r["evidence"]["notes"]])


def test_split_transmit_queue_stall_is_reported_with_its_evidence(dpdk_run):
    for r in _stall_runs(dpdk_run, "split"):
        assert r["verdict"] == "FAIL" and r["keyword"] == "SHOULD", r
        seen = _seen(r)
        # the hostile descriptor went where the device looks without an outside event
        assert "transmitq1" in seen and "receiveq" not in seen, seen
        assert "never used" in seen and "DEVICE_NEEDS_RESET" in seen, seen
        assert "offending buffer never used; later buffer never used" in seen, seen


def test_packed_ring_that_skips_the_bad_descriptor_is_not_failed(dpdk_run):
    for r in _stall_runs(dpdk_run, "packed"):
        assert "was used by the device" in _seen(r), r
        assert r["verdict"] not in BAD_VERDICTS, r
        assert r["verdict"] == "REJECT" and "later ordinary buffer on it was used" in r["reason"]


FRAME = bytes(12) + bytes.fromhex("ffffffffffff020000000001") + b"\x08\x00" + bytes(46)
OUTSIDE = 0x4000_0000          # beyond the 16 MiB of guest RAM at 0


@pytest.mark.parametrize("layout", [SPLIT, PACKED])
def test_later_frames_after_a_descriptor_outside_memory(testpmd, layout):
    """What the report's finding rests on, driven by hand on transmitq1: a
    valid frame, a device-readable descriptor outside memory, another valid
    frame. Split: neither of the last two is ever used, nothing signals an
    error (no config notification, no DEVICE_NEEDS_RESET): the queue stalls
    silently. Packed: the bad one is used without data and the queue goes on."""
    t = VhostUserTransport(testpmd.socket, NET.device_id, num_queues=2, queue_size=256)
    try:
        t.write_status(ACKNOWLEDGE | DRIVER)
        t.write_driver_features(1 << F_VERSION_1 | (1 << F_RING_PACKED if layout == PACKED else 0))
        t.write_status(ACKNOWLEDGE | DRIVER | FEATURES_OK)
        specs = NET.queues(t.driver_features)
        assert [q.name for q in specs] == ["receiveq1", "transmitq1"]
        rings = []
        for q in specs:
            base = 0x10_0000 * (q.index + 1)
            cfg = QueueConfig(layout, 256, base, base + 0x1000, base + 0x2000)
            t.set_queue(q.index, cfg)
            t.enable_queue(q.index)
            rings.append(HQueue(t.memory, cfg, q.index))
        t.write_status(ACKNOWLEDGE | DRIVER | FEATURES_OK | DRIVER_OK)
        rx, tx = rings
        rx.add_chain([Desc(0x80_0000, 2048, DESC_F_WRITE)], 100, 2048)
        t.notify(rx.index)
        t.memory.write(0x40_0000, FRAME)

        def send(token: int, desc: Desc, wait: float) -> list[int]:
            tx.add_chain([desc], token, 0)
            t.notify(tx.index)
            deadline = time.monotonic() + wait
            got: list[int] = []
            while time.monotonic() < deadline and not got:
                got = [u.token for u in tx.collect()]
                time.sleep(0.02)
            return got

        assert send(1, Desc(0x40_0000, len(FRAME)), 2.0) == [1]
        bad = send(2, Desc(OUTSIDE, 512), 0.5)
        later = send(3, Desc(0x40_0000, len(FRAME)), 2.0)
        irqs = t.take_interrupts()
        status = t.read_status()
    finally:
        t.close()
    assert irqs.config == 0 and not status & DEVICE_NEEDS_RESET
    if layout == SPLIT:
        assert bad == [] and later == [] and tx.collect() == []
    else:
        assert bad == [2] and later == [3]


def test_frames_are_the_ordinary_net_request(dpdk_run):
    """Vectors that make one ordinary request run on net (a frame on
    transmitq1): no SKIP for want of one, and the notification rules pass."""
    assert not [r["checkId"] for r in dpdk_run.results
                if "no ordinary request is defined" in r["reason"]]
    for check in ("base.notif.dev.flag-clear-notify/flags-zero",
                  "base.notif.dev.event-reached/second-entry",
                  "base.notif.dev.flag-set-quiet/no-interrupt-flag"):
        split = [r for r in dpdk_run.by_check(check) if r["layout"] == "split"]
        assert split and {r["verdict"] for r in split} == {"PASS"}, check


def test_early_notification_is_reported_with_its_evidence(dpdk_run):
    runs = [r for r in dpdk_run.by_check(EARLY_NOTIFY_CHECK) if r["layout"] == "split"]
    assert runs and all(r["verdict"] == "FAIL" and r["keyword"] == "SHOULD NOT" for r in runs)
    assert all("1 used buffer notification" in r["evidence"]["observed"] for r in runs)


def test_net_feature_bits_are_named(dpdk_run):
    unnamed = {int(n) for n in re.findall(r"\bbit(\d+)\b", dpdk_run.text)}
    assert not {b for b in unnamed if NET.feature_name(b) != f"bit{b}"}, sorted(unnamed)
