"""``device-ref serve --check-driver`` as a real process, driven over
vhost-user by our front-end and reference driver, and ``conformance
driver-report`` reading what it wrote."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from device_ref.driver.blk import BlkDriver, header
from device_ref.driver.core import DriverOptions
from device_ref.vhost_user.frontend import VhostUserTransport

T_IN = 0


def cli(tool: str, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    mod = {"device-ref": "device_ref.cli", "conformance": "conformance.cli"}[tool]
    return subprocess.run([sys.executable, "-m", mod, *args], capture_output=True, text=True,
                          timeout=60, cwd=cwd)


@pytest.fixture
def work():
    # Short paths: a Unix socket path must fit in sun_path.
    d = Path(tempfile.mkdtemp(prefix="dcs-", dir="/tmp"))
    yield d
    for f in d.iterdir():
        f.unlink()
    d.rmdir()


def serve(work: Path, vectors: Path | None, *extra: str):
    sock, report = work / "blk.sock", work / "report.json"
    cmd = [sys.executable, "-m", "device_ref.cli", "serve", "--type", "blk", "--socket",
           str(sock), "--size", "1M", "--check-driver", "--report", str(report), "--quiet",
           *extra]
    if vectors is not None:
        cmd += ["--vectors", str(vectors)]
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 15
    while not sock.exists():
        assert p.poll() is None, p.stderr.read().decode()
        assert time.monotonic() < deadline
        time.sleep(0.02)
    return p, sock, report


def stop(p: subprocess.Popen) -> None:
    p.send_signal(signal.SIGTERM)
    _, err = p.communicate(timeout=15)
    assert p.returncode == 0, err.decode()


def drive(sock: Path, packed: bool, past_end: bool) -> None:
    t = VhostUserTransport(str(sock), 2)
    try:
        mask = ~0 if packed else ~(1 << 34)
        d = BlkDriver(t, DriverOptions(features=mask & ((1 << 128) - 1)))
        d.init()
        d.write(3, b"z" * 1024)
        assert d.read(3, 1024) == b"z" * 1024
        d.flush()
        assert d.get_id() == b"device-ref-blk"
        if past_end:   # 1 MiB disk: 2048 sectors, so sector 2048 is past the end
            d.wait(d.submit(0, [header(T_IN, d.capacity)], [512, 1]))
    finally:
        t.close()


@pytest.mark.parametrize("packed", [False, True], ids=["split", "packed"])
def test_clean_driver_clean_report(work, vectors_dir, packed):
    p, sock, report = serve(work, vectors_dir)
    try:
        drive(sock, packed, past_end=False)
    finally:
        stop(p)
    doc = json.loads(report.read_text())
    assert doc["schema"] == "device-ref-driver-check" and doc["device"] == "blk"
    (conn,) = doc["connections"]
    assert conn["layout"] == ("packed" if packed else "split")
    assert conn["violations"] == []
    assert conn["queues"]["0"]["chains"] == 4
    r = cli("conformance", "driver-report", str(report), "--vectors", str(vectors_dir))
    assert r.returncode == 0, r.stdout + r.stderr
    assert "no violations" in r.stdout


def test_past_capacity_read_is_reported_with_its_requirement(work, vectors_dir):
    p, sock, report = serve(work, None)    # ids come from driver-report's --vectors
    try:
        drive(sock, False, past_end=True)
        drive(sock, True, past_end=False)   # a second, clean connection
    finally:
        stop(p)
    doc = json.loads(report.read_text())
    assert [len(c["violations"]) for c in doc["connections"]] == [1, 0]
    v = doc["connections"][0]["violations"][0]
    assert v["property"] == "blk_requests within_capacity"
    assert v["evidence"]["sector"] == 2048 and v["evidence"]["capacity"] == 2048
    r = cli("conformance", "driver-report", str(report), "--vectors", str(vectors_dir))
    assert r.returncode == 1
    assert "base.blk.drv.within-capacity MUST NOT" in r.stdout
    assert "Block Device" in r.stdout and "sector=2048" in r.stdout
    j = cli("conformance", "driver-report", str(report), "--vectors", str(vectors_dir),
            "--format", "json")
    assert j.returncode == 1
    summary = json.loads(j.stdout)
    assert [g["requirement"] for g in summary["by_requirement"]] == \
        ["base.blk.drv.within-capacity"]
    assert summary["by_requirement"][0]["count"] == 1


def test_report_written_at_disconnect_before_exit(work, vectors_dir):
    p, sock, report = serve(work, vectors_dir)
    try:
        drive(sock, False, past_end=True)
        deadline = time.monotonic() + 10
        while True:   # the back-end resets the device when the front-end goes
            doc = json.loads(report.read_text())
            if doc["connections"] and doc["connections"][0]["violations"]:
                break
            assert time.monotonic() < deadline, doc
            time.sleep(0.05)
        assert doc["connections"][0]["violations"][0]["requirements"] == \
            ["base.blk.drv.within-capacity"]
    finally:
        stop(p)


@pytest.mark.parametrize("args, message", [
    (("--check-driver",), "--check-driver needs --report FILE"),
    (("--report", "x.json"), "--report and --vectors need --check-driver"),
    (("--check-driver", "--report", "/nonexistent-dir/r.json"), "does not exist"),
    (("--check-driver", "--report", "r.json", "--vectors", "/nonexistent-dir"),
     "not a directory of vector files"),
])
def test_serve_usage_errors(work, args, message):
    r = cli("device-ref", "serve", "--type", "rng", "--socket", str(work / "s.sock"), *args,
            cwd=work)
    assert r.returncode == 2
    assert message in r.stderr and "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1


def test_driver_report_bad_input(work):
    bad = work / "bad.json"
    for content in ("not json", json.dumps({"schema": "other"}),
                    json.dumps({"schema": "device-ref-driver-check", "version": 1,
                                "connections": [{"index": 1}]})):
        bad.write_text(content)
        r = cli("conformance", "driver-report", str(bad))
        assert r.returncode == 2, r.stdout
        assert "Traceback" not in r.stderr and r.stderr.startswith("conformance: error:")
    r = cli("conformance", "driver-report", str(work / "missing.json"))
    assert r.returncode == 2
