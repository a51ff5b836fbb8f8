"""Start QEMU with one virtio device model and drive it from the host.

``QemuMachine`` is a context manager: it starts ``qemu-system-x86_64``
(TCG, no guest OS) with guest RAM in a memfd this process created and maps,
the gdbstub on a Unix socket in a private directory, and the device model
with its back-end (``models.py``); it lets the firmware run until it idles
(q35: SeaBIOS has assigned the BARs and reports that nothing boots), then
hands out a ready transport. Whatever happens (an exception, Ctrl-C, a
device that stops answering) leaving the block stops QEMU: terminate, then
kill; and QEMU is told to die with this process if it is killed outright.

Machines: ``q35`` for virtio-pci (ECAM at 0xb0000000, the device in slot
4 of bus 0), ``microvm`` for virtio-mmio (24 transports of 0x200 bytes from
0xfeb00000), version 1 (QEMU's default there) or, with ``mmio_modern``,
version 2. The binary is ``qemu`` if given, else ``$CONFORMANCE_QEMU``,
else ``qemu-system-x86_64`` on PATH; ``extra_args`` are appended.
"""
from __future__ import annotations

import ctypes
import mmap
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from qemu.qmp import QMPError
from qemu.qmp.legacy import QEMUMonitorProtocol

from device_ref.qemu.gdb_remote import GdbRemote, GdbRemoteError
from device_ref.qemu.models import DEVICE_ID, ModelArgs, model_args
from device_ref.qemu.stub_bus import StubBus
from device_ref.transport import TransportError
from device_ref.transports.bus import RamWindow
from device_ref.transports.mmio import MmioTransport, find_devices
from device_ref.transports.pci import PciTransport, ecam_address
from device_ref.virtio_constants import BALLOON_PFN_SHIFT

ENV_QEMU = "CONFORMANCE_QEMU"
DEFAULT_QEMU = "qemu-system-x86_64"
MACHINES = ("q35", "microvm")
Q35_ECAM = 0xB000_0000
PCI_SLOT = 4
MICROVM_MMIO_BASE = 0xFEB0_0000
MICROVM_MMIO_SLOTS = 24
WINDOW_BASE = 16 << 20      # guest RAM the driver uses: clear of the firmware's
WINDOW_SIZE = 32 << 20
FIRMWARE_IDLE = b"No bootable device"
_PR_SET_PDEATHSIG = 1
DEVICE_PATH = f"/machine/peripheral/{DEVICE_ID}"
# QEMU's names of the balloon statistics, in tag order (VIRTIO_BALLOON_S_*)
QEMU_STAT_NAMES = ("stat-swap-in", "stat-swap-out", "stat-major-faults", "stat-minor-faults",
                   "stat-free-memory", "stat-total-memory", "stat-available-memory",
                   "stat-disk-caches", "stat-htlb-pgalloc", "stat-htlb-pgfail")


class QemuSetupError(Exception):
    """QEMU could not be started or reached (a setup problem, not a verdict)."""


@dataclass(frozen=True)
class MachineSpec:
    machine: str                       # "q35" or "microvm"
    device: str                        # a QEMU device model, e.g. virtio-rng-pci
    props: tuple[tuple[str, str], ...] = ()
    mmio_modern: bool = False          # microvm: version 2 registers instead of legacy
    qemu: str | None = None
    extra_args: tuple[str, ...] = ()
    ram_mb: int = 64
    boot_timeout: float = 30.0         # seconds for the firmware to reach its idle loop

    def binary(self) -> str:
        return self.qemu or os.environ.get(ENV_QEMU) or DEFAULT_QEMU

    def label(self) -> str:
        mode = {"q35": "pci", "microvm": "mmio" if self.mmio_modern else "mmio-legacy"}
        props = "".join(f",{k}={v}" for k, v in self.props)
        return f"{mode[self.machine]}:{self.device}{props}"


def _die_with_parent() -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


@dataclass
class QemuMachine:
    spec: MachineSpec
    proc: subprocess.Popen | None = None
    remote: GdbRemote | None = None
    bus: StubBus | None = None
    ram: mmap.mmap | None = None
    model: ModelArgs | None = None
    workdir: Path | None = None
    started: float = 0.0
    boot_seconds: float = 0.0
    _fd: int = -1
    _tmp: tempfile.TemporaryDirectory | None = None
    _qmp: QEMUMonitorProtocol | None = field(default=None, repr=False)
    _con: socket.socket | None = field(default=None, repr=False)

    # -- lifetime ----------------------------------------------------------
    def __enter__(self) -> "QemuMachine":
        try:
            self.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def command(self) -> list[str]:
        spec = self.spec
        assert self.workdir is not None and self.model is not None
        ram = f"{spec.ram_mb}M"
        cmd = [spec.binary(), "-machine", f"{spec.machine},memory-backend=ram",
               "-accel", "tcg", "-m", ram, "-smp", "1", "-nodefaults", "-no-user-config",
               "-display", "none", "-serial", "none", "-monitor", "none", "-no-reboot",
               "-object", f"memory-backend-file,id=ram,size={ram},mem-path=/dev/fd/{self._fd},"
                          "share=on",
               "-gdb", f"unix:{self.workdir / 'gdb.sock'},server=on,wait=off",
               "-qmp", f"unix:{self.workdir / 'qmp.sock'},server=on,wait=off"]
        if spec.machine == "q35":
            cmd += ["-chardev", f"file,id=fwlog,path={self.workdir / 'firmware.log'}",
                    "-device", "isa-debugcon,iobase=0x402,chardev=fwlog"]
        elif spec.mmio_modern:
            cmd += ["-global", "virtio-mmio.force-legacy=false"]
        return cmd + self.model.argv() + list(spec.extra_args)

    def start(self) -> None:
        spec = self.spec
        if spec.machine not in MACHINES:
            raise QemuSetupError(f"machine {spec.machine!r} is not one of {', '.join(MACHINES)}")
        binary = spec.binary()
        if shutil.which(binary) is None:
            raise QemuSetupError(f"QEMU binary {binary!r} not found (set ${ENV_QEMU} or install "
                                 f"qemu-system-x86)")
        self._tmp = tempfile.TemporaryDirectory(prefix="qemu-virtio-")
        self.workdir = Path(self._tmp.name)
        extra = {"addr": str(PCI_SLOT)} if spec.machine == "q35" else None
        self.model = model_args(spec.device, dict(spec.props), self.workdir, extra)
        size = spec.ram_mb << 20
        self._fd = os.memfd_create("guest-ram", 0)
        os.ftruncate(self._fd, size)
        self.ram = mmap.mmap(self._fd, size, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
        log = open(self.workdir / "qemu.log", "wb")
        self.started = time.monotonic()
        try:
            self.proc = subprocess.Popen(self.command(), pass_fds=(self._fd,),
                                         stdin=subprocess.DEVNULL, stdout=log,
                                         stderr=subprocess.STDOUT, start_new_session=True,
                                         preexec_fn=_die_with_parent)
        except OSError as exc:
            raise QemuSetupError(f"cannot start {binary}: {exc.strerror or exc}") from None
        finally:
            log.close()
        self._connect()
        self._wait_firmware()
        self.boot_seconds = time.monotonic() - self.started

    def _connect(self) -> None:
        sock = str(self.workdir / "gdb.sock")
        deadline = time.monotonic() + 10
        while not os.path.exists(sock):
            self._check_alive()
            if time.monotonic() > deadline:
                raise QemuSetupError("QEMU did not open its gdbstub socket within 10 s")
            time.sleep(0.01)
        try:
            self.remote = GdbRemote.connect_unix(sock, timeout=5.0)
            self.remote.start()
            self.remote.physical_memory_mode()
        except GdbRemoteError as exc:
            self._check_alive()
            raise QemuSetupError(f"gdbstub: {exc}") from None
        self.bus = StubBus(self.remote)

    def _check_alive(self) -> None:
        if self.proc is not None and self.proc.poll() is not None:
            raise QemuSetupError(f"QEMU exited with status {self.proc.returncode}: "
                                 f"{self.log_tail() or 'no output'}")

    def log_tail(self, lines: int = 3) -> str:
        try:
            text = (self.workdir / "qemu.log").read_text(errors="replace")
        except (OSError, TypeError):
            return ""
        return " | ".join(text.strip().splitlines()[-lines:])

    def _wait_firmware(self) -> None:
        """Let the firmware run until it idles (q35: it says nothing boots)."""
        assert self.remote is not None
        deadline = time.monotonic() + self.spec.boot_timeout
        self.remote.resume()
        if self.spec.machine == "q35":
            fwlog = self.workdir / "firmware.log"
            while FIRMWARE_IDLE not in (fwlog.read_bytes() if fwlog.exists() else b""):
                self._check_alive()
                if time.monotonic() > deadline:
                    raise QemuSetupError(f"firmware did not reach its idle loop within "
                                         f"{self.spec.boot_timeout:g} s")
                time.sleep(0.02)
        else:
            time.sleep(0.2)   # qboot finds no kernel and halts almost at once
        self._check_alive()

    def qmp(self, command: str, **args: object) -> object:
        """Run one QMP command (the monitor is on a Unix socket in the
        machine's directory); a refusal or a lost monitor is a QemuSetupError."""
        try:
            if self._qmp is None:
                self._qmp = QEMUMonitorProtocol(str(self.workdir / "qmp.sock"))
                self._qmp.connect()
                self._qmp.settimeout(5.0)
            return self._qmp.cmd(command, **args)
        except (QMPError, OSError) as exc:
            raise QemuSetupError(f"QMP {command}: {exc}") from None

    def resize_disk(self, size: int) -> None:
        """Change the size of the scratch disk of a blk model (a configuration change)."""
        if "disk" not in (self.model.files if self.model else {}):
            raise QemuSetupError(f"{self.spec.device} has no scratch disk to resize")
        self.qmp("block_resize", **{"node-name": "disk0", "size": size})

    def screen(self) -> tuple[int, int, bytes]:
        """What the first display shows: width, height and RGB bytes (QMP
        ``screendump`` into a PPM file in the machine's directory)."""
        assert self.workdir is not None
        path = self.workdir / "screen.ppm"
        self.qmp("screendump", filename=str(path))
        try:
            raw = path.read_bytes()
        except OSError as exc:
            raise QemuSetupError(f"screendump: {exc.strerror or exc}") from None
        head = raw.split(b"\n", 3)
        if len(head) < 4 or head[0] != b"P6":
            raise QemuSetupError("screendump did not write a binary PPM")
        width, height = (int(x) for x in head[1].split())
        return width, height, head[3][:width * height * 3]

    # -- the console port's chardev --------------------------------------------
    def _console(self) -> socket.socket:
        """The host end of a console model's port (its chardev socket),
        connected once per machine; QEMU discards what the driver sends on a
        port nothing is connected to."""
        if self._con is None:
            path = (self.model.files if self.model else {}).get("console")
            if path is None:
                raise QemuSetupError(f"{self.spec.device} has no console port")
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                sock.connect(str(path))
            except OSError as exc:
                sock.close()
                raise QemuSetupError(f"console chardev {path}: {exc.strerror or exc}") from None
            sock.setblocking(False)
            self._con = sock
        return self._con

    def console_write(self, data: bytes) -> None:
        try:
            self._console().sendall(data)
        except BlockingIOError:
            raise QemuSetupError("the console chardev does not take more bytes") from None
        except OSError as exc:
            raise QemuSetupError(f"console chardev: {exc.strerror or exc}") from None

    def console_read(self) -> bytes:
        """What the device sent to the host end since the last read (no wait)."""
        out = b""
        while True:
            try:
                chunk = self._console().recv(65536)
            except BlockingIOError:
                return out
            except OSError as exc:
                raise QemuSetupError(f"console chardev: {exc.strerror or exc}") from None
            if not chunk:
                return out
            out += chunk

    # -- outside events (the monitor) -------------------------------------------
    def set_balloon(self, pages: int) -> None:
        """Ask a balloon model to hold ``pages`` 4 KiB pages (QMP ``balloon``
        takes the guest size that should remain, in bytes)."""
        self.qmp("balloon", value=max(1, (self.spec.ram_mb << 20) - (pages << BALLOON_PFN_SHIFT)))

    def balloon_stats(self) -> dict[int, int]:
        """The statistics a balloon model last received, by tag (QEMU shows
        -1, as a signed or an unsigned 64-bit number, for a tag it holds no
        value for)."""
        got = self.qmp("qom-get", path=DEVICE_PATH, property="guest-stats")
        stats = got.get("stats", {}) if isinstance(got, dict) else {}
        values = {tag: int(stats[name]) for tag, name in enumerate(QEMU_STAT_NAMES)
                  if name in stats}
        return {t: v for t, v in values.items() if v not in (-1, (1 << 64) - 1)}

    def set_stats_interval(self, seconds: int) -> None:
        self.qmp("qom-set", path=DEVICE_PATH, property="guest-stats-polling-interval",
                 value=seconds)

    def send_key(self, qcode: str, down: bool) -> None:
        self.qmp("input-send-event", events=[
            {"type": "key", "data": {"down": down, "key": {"type": "qcode", "data": qcode}}}])

    def close(self) -> None:
        """Stop QEMU (terminate, then kill) and release everything; idempotent."""
        if self._con is not None:
            self._con.close()
            self._con = None
        if self._qmp is not None:
            try:
                self._qmp.close()
            except (QMPError, OSError):
                pass
            self._qmp = None
        if self.remote is not None:
            self.remote.close()
            self.remote = None
        if self.proc is not None:
            if self.proc.poll() is None:
                self.proc.terminate()
                try:
                    self.proc.wait(timeout=3)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait()
            self.proc = None
        if self.ram is not None:
            try:
                self.ram.close()
            except BufferError:
                pass      # a view is still alive: the mapping goes with the last one
            self.ram = None
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    # -- what a driver gets ----------------------------------------------------
    def window(self) -> RamWindow:
        assert self.ram is not None
        return RamWindow(WINDOW_BASE, memoryview(self.ram)[WINDOW_BASE:WINDOW_BASE + WINDOW_SIZE])

    def transport(self, msix: bool = True) -> PciTransport | MmioTransport:
        """A transport to the device model (probed afresh on each call)."""
        assert self.bus is not None
        try:
            if self.spec.machine == "q35":
                return PciTransport(self.bus, ecam_address(Q35_ECAM, 0, PCI_SLOT), self.window(),
                                    msix=msix)
            found = find_devices(self.bus, MICROVM_MMIO_BASE, MICROVM_MMIO_SLOTS)
        except TransportError:
            self._check_alive()
            raise
        if len(found) != 1:
            raise QemuSetupError(f"expected one virtio-mmio device, found {len(found)}")
        return MmioTransport(self.bus, found[0][0], self.window())
