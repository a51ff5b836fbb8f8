"""The suite over vhost-user: the reference back-end (`device-ref serve`)
in another process, reached through a socket or started per group by
spawn:, split and packed, with and without VIRTIO_F_SWIOTLB."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from conformance.select_adapter import parse_adapter
from conformance.adapters.base import AdapterOptions, SetupError
from conformance.runner import RunOptions, run_suite
from conformance.verdicts import BAD, Verdict

pytestmark = pytest.mark.slow
HERE = Path(__file__).resolve().parent


@pytest.fixture
def sockdir():
    d = tempfile.mkdtemp(prefix="cv-", dir="/tmp")    # sun_path is short
    yield Path(d)
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def serve(sockdir):
    procs = []

    def start(*args):
        sock = str(sockdir / f"s{len(procs)}.sock")
        p = subprocess.Popen([sys.executable, "-m", "device_ref.cli", "serve", "--socket", sock,
                              "--quiet", *args], stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
        procs.append(p)
        deadline = time.monotonic() + 10
        while not os.path.exists(sock):
            assert p.poll() is None and time.monotonic() < deadline, "serve did not start"
            time.sleep(0.02)
        return sock

    yield start
    for p in procs:
        p.terminate()
        p.wait(5)


@pytest.mark.parametrize("swiotlb", [True, False], ids=["swiotlb", "plain"])
@pytest.mark.parametrize("dtype", ["blk", "rng", "net", "console"])
def test_reference_backend_over_vhost_user_has_no_fail_or_wedged(suite, serve, swiotlb, dtype):
    sock = serve("--type", dtype, *(["--swiotlb"] if swiotlb else []))
    results = []
    for layout in ("split", "packed"):
        adapter = parse_adapter(f"vhost-user:{sock}", AdapterOptions(device_type=dtype))
        results += run_suite(suite, adapter, RunOptions(layout=layout)).results
    bad = [(r.layout, r.check_id, r.reason) for r in results if r.verdict in BAD]
    assert not bad
    by = {(r.layout, r.check_id): r for r in results}
    ran = [r for r in results if r.verdict in (Verdict.PASS, Verdict.REJECT)]
    assert len(ran) > 20
    if dtype == "net":
        # frames come back through the back-end process, both layouts
        for layout in ("split", "packed"):
            assert by[(layout, "base.net.dev.num-buffers-spread/spread")].verdict is Verdict.PASS
            assert by[(layout, "base.net.dev.mtu-forward/many-frames")].verdict is Verdict.PASS
    if dtype == "blk":
        assert by[("packed", "base.blk.dev.basic-requests/write-read")].verdict is Verdict.PASS
        inside = by[("split", "swiotlb.dev.inside-works/blk-roundtrip")]
        assert inside.verdict is (Verdict.PASS if swiotlb else Verdict.SKIP)
        if swiotlb:
            # the back-end process only ever had the bounce region mapped
            assert by[("split", "swiotlb.dev.no-access-outside/outside-writable")].verdict \
                is Verdict.REJECT


def test_spawn_restarts_a_crashed_backend_and_the_run_goes_on(suite, tmp_path):
    cmd = f"spawn:{sys.executable} {HERE / 'crashing_backend.py'} {{socket}}"
    adapter = parse_adapter(cmd, AdapterOptions(timeout=1.0))
    run = run_suite(suite, adapter, RunOptions(layout="split", step_timeout=1.0,
                                               only=("base.blk.dev.basic-requests",
                                                     "base.blk.dev.flush",
                                                     "base.blk.dev.unsupported-type")))
    by = {r.check_id: r for r in run.results}
    get_id = by["base.blk.dev.basic-requests/get-id"]
    assert get_id.verdict is Verdict.WEDGED
    # the tests after the crash ran against a fresh process
    after = [r for r in run.results[run.results.index(get_id) + 1:]]
    assert after and all(r.verdict in (Verdict.PASS, Verdict.REJECT) for r in after)
    assert adapter.starts >= 2
    assert "--- start 2" in run.device_log
    assert adapter.proc is None          # stopped at the end


def test_spawn_reports_a_command_that_never_listens(suite):
    """A back-end that exits before the handshake is a setup error, not verdicts."""
    adapter = parse_adapter("spawn:true {socket}", AdapterOptions(start_timeout=1.0))
    with pytest.raises(SetupError, match="exited with status 0 before listening"):
        run_suite(suite, adapter, RunOptions(layout="split",
                                             only=("base.rfb.dev.offer-version-1",)))


@pytest.mark.parametrize("variant", [None, "used-index-unwrapped"])
def test_the_wrap_check_restarts_the_ring_near_the_wrap_and_still_judges_it(sockdir, suite,
                                                                             variant):
    """Over vhost-user the used-index wrap check (65,540 requests) restarts
    the ring a few batches before the wrap with SET_VRING_BASE: the device
    serves hundreds of requests, not tens of thousands, the reference
    device passes, and a device that does not wrap its used index fails."""
    from device_ref.devices.blk import BlkDevice, MemoryStorage
    from device_ref.vhost_user.backend import Server
    from conformance.adapters.ref import DISK_SECTORS
    from conformance.mutants import by_name

    cls = BlkDevice if variant is None else \
        type("Variant", (by_name(variant).mixin, BlkDevice), {})
    devices = []

    def make():
        devices.append(cls(MemoryStorage(DISK_SECTORS * 512)))
        return devices[-1]

    server = Server(str(sockdir / "w.sock"), make, log=lambda line: None)
    thread = server.serve_in_thread()
    try:
        adapter = parse_adapter(f"vhost-user:{server.path}", AdapterOptions(device_type="blk"))
        run = run_suite(suite, adapter, RunOptions(
            layout="split", only=("base.notif.dev.event-reached/after-wrap",)))
    finally:
        server.stop()
        thread.join(5)
        server.close()
    (result,) = run.results
    if variant is None:
        assert result.verdict is Verdict.PASS, result.reason
    else:
        assert result.verdict is Verdict.FAIL and "no used buffer notification" in \
            result.evidence.observed
    served = max(d.counters.requests for d in devices)
    assert 256 < served < 1000       # 260 writes, their read-backs and the last request
