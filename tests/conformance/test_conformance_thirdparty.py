"""Real third-party vhost-user devices through spawn: qemu-storage-daemon
(vhost-user-blk) and virtiofsd (vhost-user-fs). The runner must finish
without crashing, every SKIP must say why, and the reports are kept as
files (in the test's tmp dir, and in $CONFORMANCE_REPORT_DIR when set)."""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from conformance.select_adapter import parse_adapter
from conformance.adapters.base import AdapterOptions
from conformance.report import build, json_report, terminal
from conformance.runner import RunOptions, run_suite
from conformance.verdicts import Verdict

pytestmark = [pytest.mark.thirdparty, pytest.mark.slow]
QSD = "/usr/bin/qemu-storage-daemon"
VIRTIOFSD = "/usr/lib/qemu/virtiofsd"


def _run(suite, spec: str, dtype: str, tmp_path: Path, name: str):
    runs = []
    for layout in ("split", "packed"):
        adapter = parse_adapter(spec, AdapterOptions(device_type=dtype, timeout=1.0))
        runs.append(run_suite(suite, adapter, RunOptions(layout=layout, step_timeout=1.0)))
    report = build(suite, runs)
    text = json_report.render(report)
    (tmp_path / f"{name}.json").write_text(text)
    (tmp_path / f"{name}.txt").write_text(terminal.render(report))
    keep = os.environ.get("CONFORMANCE_REPORT_DIR")
    if keep:
        Path(keep).mkdir(parents=True, exist_ok=True)
        for ext in ("json", "txt"):
            shutil.copy(tmp_path / f"{name}.{ext}", Path(keep) / f"{name}.{ext}")
    return report, json.loads(text)


def _never_crashed(report) -> None:
    for r in report.results:
        assert "unexpected error" not in r.reason, (r.check_id, r.reason)
        if r.verdict is Verdict.SKIP:
            assert r.reason.strip(), r.check_id


def test_qemu_storage_daemon(suite, tmp_path):
    if not os.access(QSD, os.X_OK):
        pytest.fail(f"{QSD} missing: install qemu-system-common")
    disk = tmp_path / "disk.img"
    with open(disk, "wb") as f:
        f.truncate(16 << 20)
    spec = (f"spawn:{QSD} --blockdev driver=file,node-name=f,filename={disk} --export "
            f"type=vhost-user-blk,id=e,node-name=f,addr.type=unix,addr.path={{socket}},"
            f"writable=on")
    report, doc = _run(suite, spec, "blk", tmp_path, "qemu-storage-daemon")
    _never_crashed(report)
    by = {(r.layout, r.check_id): r for r in report.results}
    # an independent device does ordinary block I/O through the runner's rings
    assert by[("split", "base.blk.dev.basic-requests/write-read")].verdict is Verdict.PASS
    assert by[("split", "base.rfb.dev.offer-version-1/offers-version-1")].verdict is Verdict.PASS
    # it does not offer the packed layout: those runs skip, saying so
    assert any("VIRTIO_F_RING_PACKED" in r.reason for r in report.results
               if r.layout == "packed" and r.verdict is Verdict.SKIP)
    assert set(doc["requirements"]) == set(suite.requirements())


def test_virtiofsd(suite, tmp_path):
    if not os.access(VIRTIOFSD, os.X_OK):
        pytest.fail(f"{VIRTIOFSD} missing: install qemu-system-common")
    shared = tmp_path / "shared"
    shared.mkdir()
    (shared / "hello.txt").write_text("hello\n")
    spec = f"spawn:{VIRTIOFSD} --socket-path={{socket}} -o source={shared} -o sandbox=chroot"
    report, _doc = _run(suite, spec, "fs", tmp_path, "virtiofsd")
    _never_crashed(report)
    by = {(r.layout, r.check_id): r for r in report.results}
    assert by[("split", "base.rfb.dev.offer-version-1/offers-version-1")].verdict is Verdict.PASS
    blk_only = by[("split", "base.blk.dev.basic-requests/write-read")]
    assert blk_only.verdict is Verdict.SKIP and "needs a blk device" in blk_only.reason
