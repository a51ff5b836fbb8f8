"""FAIL and WEDGED only where the rule applied (issue 17, item 2) and the
evidence a FAIL carries (item 5)."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from conformance.adapters.base import AdapterOptions
from conformance.select_adapter import parse_adapter
from conformance.conditions import Observations, unmet
from conformance.runner import RunOptions, run_suite
from conformance.verdicts import Verdict

HERE = Path(__file__).resolve().parent
F_VERSION_1, F_EVENT_IDX, F_SWIOTLB = 32, 29, 44


def _seen(negotiated: int = 0, needs_reset: bool = False, driver_ok: bool = True,
          offered: int | None = None) -> Observations:
    return Observations("blk", negotiated, offered, 4 if driver_ok else 0, needs_reset)


def test_conditions_are_read_from_what_was_observed():
    text = "DRIVER_OK is set and the device has set DEVICE_NEEDS_RESET"
    assert unmet(text, _seen(needs_reset=True)) is None
    assert unmet(text, _seen()) == "the device has set DEVICE_NEEDS_RESET"
    assert unmet(text, _seen(driver_ok=False, needs_reset=True)) == "DRIVER_OK is set"
    ev = "@feature(VIRTIO_F_EVENT_IDX) has been negotiated"
    assert unmet(ev, _seen(1 << F_EVENT_IDX)) is None
    assert unmet(ev, _seen()) == "VIRTIO_F_EVENT_IDX has been negotiated"
    assert unmet("@feature(VIRTIO_F_EVENT_IDX) has not been negotiated", _seen()) is None
    both = "both @feature(VIRTIO_F_SWIOTLB) and @feature(VIRTIO_F_EVENT_IDX) have been negotiated"
    assert unmet(both, _seen(1 << F_SWIOTLB)) == "VIRTIO_F_EVENT_IDX has been negotiated"
    assert unmet("the device offers @feature(VIRTIO_BLK_F_RO)", _seen(offered=1 << 5)) is None
    assert unmet("the device offers @feature(VIRTIO_BLK_F_RO)", _seen(offered=0)) is not None
    # what the runner cannot read is taken as held: never a SKIP by accident
    assert unmet("the device is backed by persistent storage", _seen()) is None


def test_a_silent_stall_fails_the_should_and_skips_the_rule_that_needs_the_error(suite):
    """The device stops serving the queue after a bad descriptor and never
    sets DEVICE_NEEDS_RESET (what DPDK's transmit queue does): the SHOULD
    about setting it FAILs with evidence; the MUST that applies only once it
    is set is SKIP, its condition never held."""
    run = run_suite(suite, parse_adapter("mutant:stalls-silently"),
                    RunOptions(layout="split", step_timeout=0.3,
                               only=("base.status.dev.set-needs-reset",
                                     "base.status.dev.notify-needs-reset")))
    by = {r.requirement: r for r in run.results}
    should = by["base.status.dev.set-needs-reset"]
    assert should.verdict is Verdict.FAIL
    assert "the offending buffer on requestq1 (queue 0) was never used by the device" \
        in should.evidence.notes
    must = by["base.status.dev.notify-needs-reset"]
    assert must.verdict is Verdict.SKIP
    assert must.reason.startswith("condition never held: the device has set DEVICE_NEEDS_RESET")


def test_a_device_that_sets_needs_reset_without_notifying_still_fails(suite):
    run = run_suite(suite, parse_adapter("mutant:no-config-notification"),
                    RunOptions(layout="split", step_timeout=0.3,
                               only=("base.status.dev.notify-needs-reset",)))
    assert {r.verdict for r in run.results} == {Verdict.FAIL}


@pytest.fixture
def sockdir():
    d = tempfile.mkdtemp(prefix="cv-", dir="/tmp")    # sun_path is short
    yield Path(d)
    shutil.rmtree(d, ignore_errors=True)


ONLY = ("base.rfb.dev.without-version-1", "base.status.dev.notify-needs-reset",
        "base.reset.dev.status-zero")


def _verdicts(results) -> dict[str, tuple[Verdict, str]]:
    return {r.check_id: (r.verdict, r.reason) for r in results}


@pytest.mark.slow
def test_a_backend_that_exits_gets_the_same_verdicts_under_spawn_and_vhost_user(suite, sockdir):
    script = HERE / "exiting_backend.py"
    spawn = parse_adapter(f"spawn:{sys.executable} {script} {{socket}}",
                          AdapterOptions(timeout=1.0))
    by_spawn = _verdicts(run_suite(suite, spawn, RunOptions(layout="split", step_timeout=0.5,
                                                            only=ONLY)).results)
    sock = str(sockdir / "x.sock")
    by_socket = {}
    # vhost-user: a fresh back-end per test, as the process exits after one
    for check in by_spawn:
        proc = subprocess.Popen([sys.executable, str(script), sock])
        try:
            deadline = time.monotonic() + 10
            while not os.path.exists(sock):
                assert proc.poll() is None and time.monotonic() < deadline
                time.sleep(0.02)
            adapter = parse_adapter(f"vhost-user:{sock}", AdapterOptions(device_type="blk",
                                                                         timeout=1.0))
            adapter.preflighted = True      # this back-end would refuse a second connection
            run = run_suite(suite, adapter, RunOptions(layout="split", step_timeout=0.5,
                                                       only=(check,)))
            by_socket.update(_verdicts(run.results))
        finally:
            proc.kill()
            proc.wait()
            if os.path.exists(sock):
                os.unlink(sock)
    legacy = "base.rfb.dev.without-version-1/legacy-driver"
    assert by_spawn[legacy][0] is Verdict.PASS and by_socket[legacy][0] is Verdict.PASS
    for check in ("base.status.dev.notify-needs-reset/notify-after-error",
                  "base.reset.dev.status-zero/after-error"):
        assert by_spawn[check][0] is Verdict.SKIP, by_spawn[check]
        assert by_socket[check][0] is Verdict.SKIP, by_socket[check]
        assert "condition never held" in by_socket[check][1]
    assert {k: v[0] for k, v in by_spawn.items()} == {k: v[0] for k, v in by_socket.items()}


def test_an_in_process_device_that_raises_is_wedged_not_a_runner_error(suite):
    """Device code runs on the runner's thread in process: what it raises is
    its crash (WEDGED with the exception), not a fault of the runner."""
    run = run_suite(suite, parse_adapter("mutant:writes-readable-buffer"),
                    RunOptions(layout="split", step_timeout=0.3,
                               only=("qenc.dev.open-readable/kat-aes-256-gcm",)))
    assert [r.verdict for r in run.results] == [Verdict.WEDGED]
    assert "the device crashed: AttributeError" in run.results[0].reason
