"""Starting back-end commands: each way it can fail is one clear line."""
from __future__ import annotations

import sys

import pytest

from device_ref.vhost_user.frontend import VhostUserTransport
from device_ref.vhost_user.spawn import SpawnedBackend, SpawnError


def test_spawned_serve_is_usable_and_stopped(sockdir):
    sock = str(sockdir / "s.sock")
    with SpawnedBackend([sys.executable, "-m", "device_ref.cli", "serve", "--type", "rng",
                         "--socket", "{socket}"], sock) as b:
        t = VhostUserTransport(sock, 4)
        assert t.info.queue_num == 1
        t.close()
    assert b.proc.returncode == 0  # SIGTERM is a clean stop for serve


def test_missing_command(sockdir):
    with pytest.raises(SpawnError, match="cannot run /nonexistent/backend"):
        SpawnedBackend(["/nonexistent/backend", "{socket}"], str(sockdir / "x.sock"))


def test_command_that_exits(sockdir):
    with pytest.raises(SpawnError, match=r"exited with status 2 before listening .*: boom"):
        SpawnedBackend([sys.executable, "-c", "import sys; print('boom'); sys.exit(2)"],
                       str(sockdir / "x.sock"))


def test_command_that_never_listens(sockdir):
    with pytest.raises(SpawnError, match="did not listen on .* within 0.3 s"):
        SpawnedBackend([sys.executable, "-c", "import time; time.sleep(30)"],
                       str(sockdir / "x.sock"), timeout=0.3)
