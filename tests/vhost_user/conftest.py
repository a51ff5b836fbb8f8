"""Fixtures that start vhost-user back-ends (ours and third-party) and stop them."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from device_ref.vhost_user.spawn import SpawnedBackend

QSD = "/usr/bin/qemu-storage-daemon"
VIRTIOFSD = "/usr/lib/qemu/virtiofsd"


def wait_for_socket(path: str, proc: subprocess.Popen | None = None, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not os.path.exists(path):
        if proc is not None and proc.poll() is not None:
            out = proc.stdout.read().decode(errors="replace") if proc.stdout else ""
            raise RuntimeError(f"back-end exited with {proc.returncode} before listening: {out}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"{path} did not appear within {timeout} s")
        time.sleep(0.02)


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture
def sockdir():
    # Unix socket paths are limited to 107 bytes; pytest's tmp_path can be long.
    d = tempfile.mkdtemp(prefix="vu-", dir="/tmp")
    yield Path(d)
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def qsd(sockdir):
    """qemu-storage-daemon exporting a 16 MiB raw file as vhost-user-blk."""
    if not os.access(QSD, os.X_OK):
        pytest.fail(f"{QSD} missing: install qemu-system-common")
    disk = sockdir / "qsd.img"
    with open(disk, "wb") as f:
        f.truncate(16 << 20)
    sock = str(sockdir / "qsd.sock")
    with SpawnedBackend([QSD, "--blockdev", f"driver=file,node-name=disk0,filename={disk}",
                         "--export", "type=vhost-user-blk,id=export0,node-name=disk0,"
                                     "addr.type=unix,addr.path={socket},writable=on"], sock):
        yield sock, disk


@pytest.fixture
def virtiofsd(sockdir):
    if not os.access(VIRTIOFSD, os.X_OK):
        pytest.fail(f"{VIRTIOFSD} missing: install qemu-system-common")
    shared = sockdir / "shared"
    shared.mkdir()
    (shared / "hello.txt").write_text("hello\n")
    sock = str(sockdir / "fs.sock")
    with SpawnedBackend([VIRTIOFSD, "--socket-path={socket}", "-o", f"source={shared}",
                         "-o", "sandbox=chroot"], sock):
        yield sock


def serve_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "device_ref.cli", "serve", *args]


@pytest.fixture
def serve_process(sockdir):
    """Start `device-ref serve` as a separate process: serve_process(*args) -> (sock, proc)."""
    procs = []

    def start(*args: str, name: str = "ours.sock"):
        sock = str(sockdir / name)
        proc = subprocess.Popen(serve_cmd("--socket", sock, *args), stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT)
        procs.append(proc)
        wait_for_socket(sock, proc)
        return sock, proc

    yield start
    for p in procs:
        stop(p)
