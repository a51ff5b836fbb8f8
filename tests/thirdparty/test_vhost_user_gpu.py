"""QEMU 7.2's vhost-user-gpu judged as a virtio-gpu device.

It serves one connection per process and exits on a descriptor it cannot
map. The suite must run it one process per group, put the hostile
descriptor on controlq (the queue it serves unprompted), blame only the
requirement whose step met the exit, and give a rule that lets a device
stop operating the same verdict under `spawn:` and `vhost-user:`. It
answers display commands only through the display socket our front-end
hands it (GPU_SET_SOCKET), so the GPU checks run and must PASS.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from .conftest import VHOST_USER_GPU, run_conformance

pytestmark = [pytest.mark.thirdparty, pytest.mark.slow]

HOSTILE_CHECK = "base.status.dev.set-needs-reset/descriptor-outside-memory"
LEGACY_REQ = "base.rfb.dev.without-version-1"


def test_suite_runs_to_the_end_and_every_skip_says_why(gpu_run):
    assert gpu_run.doc["device"].endswith("(gpu)")
    for r in gpu_run.results:
        assert "unexpected error" not in r["reason"], (r["checkId"], r["reason"])
        if r["verdict"] == "SKIP":
            assert r["reason"].strip(), r["checkId"]
    assert any(r["verdict"] == "PASS" for r in gpu_run.results)


def test_no_fail_and_wedged_only_where_the_exit_happened(gpu_run):
    assert [r["checkId"] for r in gpu_run.results if r["verdict"] == "FAIL"] == []
    wedged = {r["checkId"] for r in gpu_run.results if r["verdict"] == "WEDGED"}
    assert wedged <= {HOSTILE_CHECK}, sorted(wedged)
    for check in ("base.status.dev.notify-needs-reset/notify-after-error",
                  "base.reset.dev.status-zero/after-error"):
        for r in gpu_run.by_check(check):
            assert r["verdict"] == "SKIP", r


def test_gpu_commands_are_answered_through_our_display_socket(gpu_run):
    """The front-end hands the back-end its display socket, so the GPU
    checks run: every one PASSes on the split layout (the back-end offers
    no packed ring) and none SKIPs for want of a display."""
    gpu = [r for r in gpu_run.results
           if r["checkId"].startswith(("base.gpu.dev.responses/", "base.gpu.dev.fence/"))]
    checks = {r["checkId"] for r in gpu}
    assert {"base.gpu.dev.responses/display-info", "base.gpu.dev.responses/resource-2d",
            "base.gpu.dev.fence/fenced-2d-resource",
            "base.gpu.dev.fence/fenced-flush-shows"} <= checks, sorted(checks)
    for r in gpu:
        if r["layout"] == "split":
            assert r["verdict"] == "PASS", (r["checkId"], r["verdict"], r["reason"])
        else:
            assert r["verdict"] == "SKIP" and "RING_PACKED" in r["reason"], r
    for r in gpu_run.results:
        assert "display socket" not in r["reason"], (r["checkId"], r["reason"])


def test_hostile_descriptor_goes_on_controlq(gpu_run):
    runs = [r for r in gpu_run.by_check(HOSTILE_CHECK) if r["verdict"] != "SKIP"]
    assert runs
    for r in runs:
        seen = " ".join([r["reason"], r["evidence"]["observed"], *r["evidence"]["notes"]])
        assert "controlq" in seen, seen


def test_may_fail_to_operate_rule_has_one_verdict_under_spawn_and_vhost_user(
        gpu_run, thirdparty_vectors, tmp_path):
    spawned = gpu_run.verdicts(LEGACY_REQ)
    assert spawned and spawned <= {"PASS", "SKIP"}, spawned
    work = Path(tempfile.mkdtemp(prefix="vugpu-", dir="/tmp"))
    sock = work / "gpu.sock"
    proc = subprocess.Popen([VHOST_USER_GPU, f"--socket-path={sock}"], stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 10
        while not sock.exists():
            assert proc.poll() is None and time.monotonic() < deadline, "vhost-user-gpu did not listen"
            time.sleep(0.02)
        direct = run_conformance(thirdparty_vectors, tmp_path, "gpu-direct", f"vhost-user:{sock}",
                                 "gpu", "--only", LEGACY_REQ, "--layout", "split")
    finally:
        if proc.poll() is None:
            proc.terminate()
            proc.wait(5)
        shutil.rmtree(work, ignore_errors=True)
    split_spawned = {r["verdict"] for r in gpu_run.results
                     if r["requirement"] == LEGACY_REQ and r["layout"] == "split"}
    assert direct.verdicts(LEGACY_REQ) == split_spawned
    assert os.path.exists(tmp_path / "gpu-direct.json")
