"""Third-party vhost-user devices judged by the conformance suite, each run
once per test session through the `conformance run` command, with the
reports kept in $CONFORMANCE_REPORT_DIR (./dev.sh test: out/reports/).

DPDK's testpmd takes seconds to start and serves one front-end after
another, so one process serves the whole session (`vhost-user:`);
vhost-user-gpu serves one connection per process, so it runs under `spawn:`,
one process per test group.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conformance.conftest import compile_vectors

TESTPMD = "dpdk-testpmd"
VHOST_USER_GPU = "/usr/lib/qemu/vhost-user-gpu"
# The command line issue 17 gives: no hugepages, no PCI, one queue pair.
TESTPMD_ARGS = ("--no-huge -m 256 --no-pci --file-prefix={prefix} -l 0,1 "
                "--vdev net_vhost0,iface={socket},queues=1 -- --stats-period 60 --nb-cores=1 "
                "--total-num-mbufs=2048")
START_TIMEOUT = 60.0


@dataclass
class Run:
    """One `conformance run`: its exit status, JSON report and terminal text."""
    name: str
    returncode: int
    doc: dict
    text: str
    stderr: str
    seconds: float

    @property
    def results(self) -> list[dict]:
        return self.doc["results"]

    def by_check(self, check_id: str) -> list[dict]:
        return [r for r in self.results if r["checkId"] == check_id]

    def verdicts(self, requirement: str) -> set[str]:
        return {r["verdict"] for r in self.results if r["requirement"] == requirement}


@pytest.fixture(scope="session")
def thirdparty_vectors(tmp_path_factory) -> Path:
    return compile_vectors(tmp_path_factory.mktemp("tp-vectors"))


@pytest.fixture(scope="session")
def report_dir(tmp_path_factory) -> Path:
    keep = os.environ.get("CONFORMANCE_REPORT_DIR")
    path = Path(keep) if keep else tmp_path_factory.mktemp("reports")
    path.mkdir(parents=True, exist_ok=True)
    return path


def run_conformance(vectors: Path, reports: Path, name: str, device: str, device_type: str,
                    *extra: str, timeout: float = 1200) -> Run:
    """`conformance run` as a user runs it; the reports land in `reports`."""
    json_path, text_path = reports / f"{name}.json", reports / f"{name}.txt"
    argv = [sys.executable, "-m", "conformance.cli", "run", "--vectors", str(vectors),
            "--device", device, "--device-type", device_type, "--json", str(json_path),
            "-o", str(text_path), *extra]
    start = time.monotonic()
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout,
                          stdin=subprocess.DEVNULL)
    seconds = time.monotonic() - start
    assert proc.returncode in (0, 1), (f"{name}: conformance run exited {proc.returncode}: "
                                       f"{proc.stderr[-2000:]}")
    return Run(name, proc.returncode, json.loads(json_path.read_text()), text_path.read_text(),
               proc.stderr, seconds)


class Testpmd:
    """One dpdk-testpmd with its vhost PMD listening on a Unix socket; its
    output goes to a log file (a pipe nobody reads would fill and stall it)."""

    def __init__(self, work: Path) -> None:
        if shutil.which(TESTPMD) is None:
            pytest.fail(f"{TESTPMD} missing: install dpdk-dev (./dev.sh test does)")
        self.socket = str(work / "net.sock")
        self.log_path = work / "testpmd.log"
        argv = [TESTPMD, *TESTPMD_ARGS.format(prefix=f"conf{os.getpid()}",
                                              socket=self.socket).split()]
        self._log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=self._log,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + START_TIMEOUT
        while not os.path.exists(self.socket):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                pytest.fail(f"{TESTPMD} did not listen on {self.socket}: {self.log()[-1500:]}")
            time.sleep(0.05)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def kicked_queues(self) -> set[int]:
        """Every vring index a front-end gave a kick fd for, over all connections."""
        return {int(n) for n in re.findall(r"vring kick idx:(\d+)", self.log())}

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()


@pytest.fixture(scope="session")
def testpmd():
    work = Path(tempfile.mkdtemp(prefix="tpmd-", dir="/tmp"))   # short: sun_path is 108 bytes
    pmd = Testpmd(work)
    try:
        yield pmd
    finally:
        pmd.stop()
        shutil.rmtree(work, ignore_errors=True)


@pytest.fixture(scope="session")
def dpdk_run(testpmd, thirdparty_vectors, report_dir) -> Run:
    """The whole suite against testpmd as a virtio-net device, split and packed."""
    run = run_conformance(thirdparty_vectors, report_dir, "dpdk-testpmd",
                          f"vhost-user:{testpmd.socket}", "net")
    assert testpmd.proc.poll() is None, f"testpmd died during the run: {testpmd.log()[-1500:]}"
    print(f"dpdk-testpmd: suite ran in {run.seconds:.1f} s")
    return run


@pytest.fixture(scope="session")
def gpu_run(thirdparty_vectors, report_dir) -> Run:
    """The whole suite against vhost-user-gpu, one process per test group."""
    if not os.access(VHOST_USER_GPU, os.X_OK):
        pytest.fail(f"{VHOST_USER_GPU} missing: install qemu-system-gui (./dev.sh test does)")
    run = run_conformance(thirdparty_vectors, report_dir, "vhost-user-gpu",
                          f"spawn:{VHOST_USER_GPU} --socket-path={{socket}}", "gpu")
    print(f"vhost-user-gpu: suite ran in {run.seconds:.1f} s")
    return run
