"""VIRTIO_F_SWIOTLB's trust model, enforced by the operating system.

With the feature negotiated our front-end shares only the bounce region, so
a back-end *process* that wants to read the rest of guest memory cannot: the
RAM memfd is neither mapped in it nor open in it, and the front-end's
address of that RAM is not mapped there. Without the feature the same spy
does read the secret, which shows the probe would notice a leak.
"""
from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import time
import json
from pathlib import Path

from device_ref.driver.blk import BlkDriver
from device_ref.transport import BounceRegion
from device_ref.vhost_user.frontend import VhostUserTransport

from .conftest import stop, wait_for_socket

BOUNCE = BounceRegion(0x1_0000_0000, 4 << 20)
RAM = 8 << 20
SECRET_AT = RAM - 4096   # far from where the driver allocates (first fit from the start)
F_SWIOTLB = 44
SPY = Path(__file__).with_name("snoop_backend.py")


def run_spy(sockdir: Path, swiotlb: bool) -> tuple[dict, int]:
    sock = str(sockdir / "spy.sock")
    result = sockdir / "spy.json"
    secret = os.urandom(64)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
    # The spy is told where the secret is, and its hash, never the secret.
    proc = subprocess.Popen([sys.executable, str(SPY), sock, str(result), hex(SECRET_AT), "64",
                             hashlib.sha256(secret).hexdigest()]
                            + (["--swiotlb"] if swiotlb else []), env=env)
    t = None
    try:
        wait_for_socket(sock, proc)
        t = VhostUserTransport(sock, 2, bounce=BOUNCE if swiotlb else None, ram_size=RAM)
        t.memory.write(SECRET_AT, secret)
        ram = t.memory.shared_ram[0]
        Path(str(result) + ".va").write_text(hex(ram.user_addr + SECRET_AT - ram.guest_addr))
        drv = BlkDriver(t)
        drv.init()
        negotiated = drv.negotiated
        deadline = time.monotonic() + 10
        while not result.exists():
            assert proc.poll() is None, "spy died"
            assert time.monotonic() < deadline, "spy never reported"
            time.sleep(0.02)
        drv.shutdown()
        return json.loads(result.read_text()), negotiated
    finally:
        if t is not None:
            t.close()
        stop(proc)


def test_swiotlb_backend_process_cannot_reach_guest_ram(sockdir):
    seen, negotiated = run_spy(sockdir, swiotlb=True)
    assert negotiated >> F_SWIOTLB & 1
    # Through the memory it was handed: the address is simply not there.
    assert seen["via_memory"] == "refused: OUT_OF_BOUNDS"
    # Through its own address space: nothing is mapped at that address.
    assert seen["va_mapped"] is False
    assert seen["via_address"].startswith("fault")
    # The only guest memory in the process is the bounce region (its disk,
    # an in-memory one, is a memory file of its own).
    guest = [m for m in seen["maps"] if "memfd:device-ref-disk" not in m]
    assert all("memfd:bounce" in m for m in guest) and guest
    assert not any("guest-ram" in x for x in seen["maps"] + seen["fds"])


def test_without_swiotlb_the_same_spy_reads_the_secret(sockdir):
    seen, negotiated = run_spy(sockdir, swiotlb=False)
    assert not negotiated >> F_SWIOTLB & 1
    assert seen["via_memory"] == "secret"
    assert any("guest-ram" in m for m in seen["maps"])
