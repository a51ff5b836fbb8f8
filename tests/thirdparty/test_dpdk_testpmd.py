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

import pytest

from device_ref.device_types import device_type

pytestmark = [pytest.mark.thirdparty, pytest.mark.slow]

NET = device_type("net")
STALL_CHECK = "base.status.dev.set-needs-reset/descriptor-outside-memory"
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
           if r["verdict"] in BAD_VERDICTS and r["checkId"] != STALL_CHECK]
    assert bad == []
    # the device never set DEVICE_NEEDS_RESET: the MUST that follows it did not apply
    for r in dpdk_run.by_check("base.status.dev.notify-needs-reset/notify-after-error"):
        assert r["verdict"] == "SKIP" and "condition never held" in r["reason"], r


def test_transmit_queue_stall_is_reported_with_its_evidence(dpdk_run):
    runs = dpdk_run.by_check(STALL_CHECK)
    assert {r["layout"] for r in runs} == {"split", "packed"}
    for r in runs:
        assert r["verdict"] == "FAIL" and r["keyword"] == "SHOULD", r
        seen = " ".join([r["reason"], r["evidence"]["observed"], *r["evidence"]["notes"]])
        # the hostile descriptor went where the device looks without an outside event
        assert "transmitq1" in seen and "receiveq" not in seen, seen
        assert "DEVICE_NEEDS_RESET" in seen, seen


def test_net_feature_bits_are_named(dpdk_run):
    unnamed = {int(n) for n in re.findall(r"\bbit(\d+)\b", dpdk_run.text)}
    assert not {b for b in unnamed if NET.feature_name(b) != f"bit{b}"}, sorted(unnamed)
