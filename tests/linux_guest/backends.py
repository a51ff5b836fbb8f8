"""The host side of a Linux guest boot: one ``device-ref serve --check-driver``
process per vhost-user device, started before QEMU, stopped after it.

Both guest suites (tests/linux_guest and tests/driver_check) boot one guest
with many devices, each served by its own checking back-end, so that Linux's
drivers move real data and are judged at the same time.
"""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from . import qemu_guest as g


@dataclass(frozen=True)
class GuestDevice:
    """One device of the boot: its tag in the guest's report, the driver
    (``blk`` or ``rng``), its PCI slot, what QEMU asks for, and any extra
    arguments of its ``serve`` process."""
    tag: str
    kind: str
    slot: int
    packed: bool                        # QEMU's packed=on
    extras: bool = True                 # INDIRECT_DESC and EVENT_IDX left on
    serve_args: tuple[str, ...] = ()
    qemu_props: tuple[tuple[str, str], ...] = ()   # more QEMU device properties

    @property
    def ring_packed(self) -> bool:
        """Packed rings need QEMU's packed=on and our offer of RING_PACKED."""
        return self.packed and "--no-packed" not in self.serve_args

    @property
    def props(self) -> dict[str, str]:
        p = {"packed": "on" if self.packed else "off"}
        if not self.extras:
            p.update(indirect_desc="off", event_idx="off")
        if self.kind == "net":
            # QEMU 7.2 crashes (SIGSEGV in msix_set_vector_notifiers, called
            # from vhost_net_start) when a vhost-user network device starts
            # under TCG with MSI-X: the guest gets INTx instead
            # (docs/driver-check.md, "Network device")
            p["vectors"] = "0"
        p.update(self.qemu_props)
        return p


class CheckingBackends:
    """The ``serve`` processes of one boot, in a work directory of their own.

    Use as a context manager: leaving it kills what still runs and removes
    the directory (sockets, disk images, reports)."""

    def __init__(self, prefix: str) -> None:
        self.work = Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))
        self.devices: list[GuestDevice] = []
        self.procs: dict[str, subprocess.Popen] = {}
        self.disks: dict[str, Path] = {}

    def __enter__(self) -> CheckingBackends:
        return self

    def __exit__(self, *exc: object) -> None:
        for p in self.procs.values():
            if p.poll() is None:
                p.kill()
                p.wait()
        shutil.rmtree(self.work, ignore_errors=True)

    def socket(self, tag: str) -> Path:
        return self.work / f"{tag}.sock"

    def report_path(self, tag: str) -> Path:
        return self.work / f"{tag}.json"

    def start(self, dev: GuestDevice, disk_size: int, *args: str) -> None:
        """Serve ``dev`` in checking mode; a blk device gets a blank disk
        image of ``disk_size`` bytes."""
        cmd = [sys.executable, "-m", "device_ref.cli", "serve", "--type", dev.kind,
               "--socket", str(self.socket(dev.tag)), *dev.serve_args, "--check-driver",
               "--report", str(self.report_path(dev.tag)), *args]
        if dev.kind == "blk":
            disk = self.work / f"{dev.tag}.img"
            with open(disk, "wb") as f:
                f.truncate(disk_size)
            self.disks[dev.tag] = disk
            cmd += ["--disk", str(disk)]
        self.devices.append(dev)
        self.procs[dev.tag] = subprocess.Popen(cmd, stdout=subprocess.DEVNULL,
                                               stderr=subprocess.PIPE)

    def wait_listening(self, timeout: float = 20.0) -> None:
        """Fail the test unless every back-end has its socket up in time."""
        deadline = time.monotonic() + timeout
        for tag, proc in self.procs.items():
            while not self.socket(tag).exists():
                if proc.poll() is not None:
                    pytest.fail(f"serve for {tag} exited: {proc.stderr.read().decode()}")
                if time.monotonic() > deadline:
                    pytest.fail(f"serve for {tag} did not listen")
                time.sleep(0.05)

    def vhost_devices(self) -> list[g.VhostDevice]:
        """The QEMU side of every device started, in start order."""
        return [g.VhostDevice(d.kind, str(self.socket(d.tag)), d.slot, d.props)
                for d in self.devices]

    def stop(self, timeout: float = 15.0) -> dict[str, str]:
        """Terminate every back-end (each writes its report on the way out);
        return each one's stderr by tag."""
        logs = {}
        for tag, p in self.procs.items():
            p.terminate()
            _, err = p.communicate(timeout=timeout)
            logs[tag] = err.decode(errors="replace")
        return logs

    def reports(self) -> dict[str, dict]:
        """The checking reports, by tag (read after ``stop``)."""
        return {d.tag: json.loads(self.report_path(d.tag).read_text()) for d in self.devices}
