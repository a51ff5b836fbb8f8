"""Boot a real Linux guest under QEMU (TCG) whose virtio drivers use our
vhost-user back-ends, and collect what the guest reports.

Reusable by tests and by ``bench/blk.py``:

* ``find_kernel(series)`` picks an installed Debian cloud kernel by series
  ("6.1" by default, "6.12"), newest release of that series first.
* ``build_initramfs(script)`` packs busybox, that kernel's virtio
  modules and an init that loads them, runs ``script`` and powers off.
* ``Guest`` starts ``qemu-system-x86_64`` with guest RAM in a shared memfd
  (so a vhost-user back-end can map it) and the given vhost-user devices,
  and returns the serial console output.
* ``parse_report(output)`` reads the guest's result lines strictly.

The guest reports through the serial console, one result a line:
``@@R <key> <value...>``, between ``@@BEGIN`` and ``@@END``. ``@@ERROR``
lines mark a failure the script noticed itself.
"""
from __future__ import annotations

import glob
import lzma
import os
import re
import shutil
import stat
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

QEMU = "qemu-system-x86_64"
BUSYBOX = "/bin/busybox"
# Load order matters: each module needs the ones before it. A kernel that
# builds some of them in (6.12 builds in all five) skips those.
BASE_MODULES = ("virtio_ring", "virtio", "virtio_pci_legacy_dev", "virtio_pci_modern_dev",
                "virtio_pci")
# The modules each driver needs after the base ones, in load order.
DRIVER_MODULES = {"blk": ("virtio_blk",), "rng": ("virtio-rng",),
                  "net": ("failover", "net_failover", "virtio_net"),
                  "console": ("virtio_console",)}

# The Debian cloud kernels the guests boot, by series: Debian 12's own
# (linux-image-cloud-amd64) and the newer one from bookworm-security
# (linux-image-6.12-cloud-amd64). Tests name the series they want; nothing
# depends on which kernel happens to sort last in /boot.
DEFAULT_SERIES = "6.1"
SERIES = ("6.1", "6.12")
PACKAGES = {"6.1": "linux-image-cloud-amd64", "6.12": "linux-image-6.12-cloud-amd64"}


class GuestSetupError(Exception):
    """The host lacks something a guest boot needs (kernel, QEMU, busybox)."""


@dataclass(frozen=True)
class Kernel:
    """An installed kernel: its image, its modules directory and its release."""
    series: str
    image: Path
    modules: Path

    @property
    def release(self) -> str:
        return self.modules.name

    def builtin(self) -> set[str]:
        """Module names the kernel has built in (modules.builtin)."""
        try:
            lines = (self.modules / "modules.builtin").read_text().split()
        except OSError:
            return set()
        return {Path(ln).name.split(".ko")[0] for ln in lines}


def _version_key(release: str) -> tuple[int, ...]:
    """6.12.118+deb12-cloud-amd64 -> (6, 12, 118, 12); 6.1.0-57-cloud-amd64 -> (6, 1, 0, 57)."""
    return tuple(int(n) for n in re.findall(r"\d+", release))


def find_kernel(series: str = DEFAULT_SERIES) -> Kernel:
    """The newest installed cloud kernel of a series (e.g. "6.1", "6.12")."""
    if series not in SERIES:
        raise GuestSetupError(f"unknown kernel series {series!r} (known: {', '.join(SERIES)})")
    found = []
    for image in glob.glob("/boot/vmlinuz-*-cloud-amd64"):
        release = Path(image).name[len("vmlinuz-"):]
        if re.match(re.escape(series) + r"[.+-]", release):
            found.append((_version_key(release), Path(image), release))
    if not found:
        raise GuestSetupError(f"no /boot/vmlinuz-{series}.*-cloud-amd64 "
                              f"(install {PACKAGES[series]})")
    _, image, release = max(found)
    modules = Path("/lib/modules") / release
    if not os.access(image, os.R_OK):
        raise GuestSetupError(f"{image} is not readable (it is root-only on Debian)")
    if not modules.is_dir():
        raise GuestSetupError(f"{modules} is missing")
    return Kernel(series, image, modules)


def module_bytes(kernel: Kernel, name: str) -> bytes:
    """A module's object code, uncompressed (busybox insmod takes plain .ko)."""
    for suffix in (".ko", ".ko.xz"):
        hits = sorted(kernel.modules.glob(f"kernel/**/{name}{suffix}"))
        if hits:
            data = hits[0].read_bytes()
            return lzma.decompress(data) if suffix == ".ko.xz" else data
    raise GuestSetupError(f"kernel module {name} not found under {kernel.modules}")


def modules_to_load(kernel: Kernel, drivers: tuple[str, ...]) -> list[str]:
    """The modules an init must insmod for these drivers, in load order."""
    builtin = kernel.builtin()
    names = list(BASE_MODULES) + [m for d in drivers for m in DRIVER_MODULES[d]]
    return [n for n in names if n not in builtin]


def _cpio_entry(name: str, mode: int, data: bytes = b"", ino: int = 0) -> bytes:
    """One 'newc' cpio record (the format the kernel unpacks)."""
    name_b = name.encode() + b"\0"
    fields = [ino, mode, 0, 0, 1, 0, len(data), 0, 0, 0, 0, len(name_b), 0]
    head = b"070701" + b"".join(f"{v:08X}".encode() for v in fields)
    rec = head + name_b
    rec += b"\0" * (-len(rec) % 4)
    rec += data
    rec += b"\0" * (-len(rec) % 4)
    return rec


INIT_TEMPLATE = """#!/bin/busybox sh
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
for m in {modules}; do
    insmod /modules/$m.ko || echo "@@ERROR insmod $m"
done
echo "@@BEGIN"
. /checks.sh
echo "@@END"
poweroff -f
"""


def build_initramfs(script: str, dest: Path, drivers: tuple[str, ...] = ("blk", "rng"),
                    kernel: Kernel | None = None) -> Path:
    """Write an initramfs that runs ``script`` (POSIX sh) after loading the
    modules ``kernel`` (default: the 6.1 series) needs for ``drivers``."""
    kernel = kernel or find_kernel()
    if not os.access(BUSYBOX, os.X_OK):
        raise GuestSetupError(f"{BUSYBOX} missing (install busybox-static)")
    names = modules_to_load(kernel, drivers)
    entries = [("bin", stat.S_IFDIR | 0o755, b""), ("dev", stat.S_IFDIR | 0o755, b""),
               ("proc", stat.S_IFDIR | 0o755, b""), ("sys", stat.S_IFDIR | 0o755, b""),
               ("tmp", stat.S_IFDIR | 0o1777, b""), ("modules", stat.S_IFDIR | 0o755, b""),
               ("bin/busybox", stat.S_IFREG | 0o755, Path(BUSYBOX).read_bytes()),
               ("init", stat.S_IFREG | 0o755,
                INIT_TEMPLATE.format(modules=" ".join(names)).encode()),
               ("checks.sh", stat.S_IFREG | 0o644, script.encode())]
    for n in names:
        entries.append((f"modules/{n}.ko", stat.S_IFREG | 0o644, module_bytes(kernel, n)))
    blob = b"".join(_cpio_entry(n, m, d, i + 1) for i, (n, m, d) in enumerate(entries))
    blob += _cpio_entry("TRAILER!!!", 0)
    dest.write_bytes(blob)
    return dest


@dataclass
class VhostDevice:
    """A vhost-user device for QEMU: ``kind`` is 'blk', 'rng' or 'net' (a
    virtio-net-pci whose network is the back-end: -netdev vhost-user)."""
    kind: str
    socket: str
    slot: int
    props: dict[str, str] = field(default_factory=dict)

    def args(self, n: int) -> list[str]:
        extra = "".join(f",{k}={v}" for k, v in self.props.items())
        chardev = ["-chardev", f"socket,id=vu{n},path={self.socket}"]
        if self.kind == "net":
            return chardev + ["-netdev", f"vhost-user,id=vn{n},chardev=vu{n}",
                              "-device", f"virtio-net-pci,netdev=vn{n},addr={self.slot:#x}{extra}"]
        qdev = {"blk": "vhost-user-blk-pci", "rng": "vhost-user-rng-pci"}[self.kind]
        return chardev + ["-device", f"{qdev},chardev=vu{n},addr={self.slot:#x}{extra}"]


@dataclass
class BootResult:
    output: str
    seconds: float
    returncode: int


def run_guest(initrd: Path, devices: list[VhostDevice], timeout: float = 120.0,
              mem: str = "512M", kernel: Kernel | None = None) -> BootResult:
    """Boot the guest (on ``kernel``, default the 6.1 series: the initramfs
    must have been built for the same one); return its console output once
    it powers off."""
    kernel = kernel or find_kernel()
    if shutil.which(QEMU) is None:
        raise GuestSetupError(f"{QEMU} not found (install qemu-system-x86)")
    cmd = [QEMU, "-M", "q35", "-accel", "tcg", "-m", mem, "-smp", "1",
           "-object", f"memory-backend-memfd,id=mem,size={mem},share=on",
           "-numa", "node,memdev=mem", "-nodefaults", "-display", "none", "-no-reboot",
           "-serial", "stdio", "-kernel", str(kernel.image), "-initrd", str(initrd),
           "-append", "console=ttyS0 panic=-1 quiet"]
    for n, d in enumerate(devices):
        cmd += d.args(n)
    start = time.monotonic()
    try:
        proc = subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        out = (exc.stdout or b"").decode(errors="replace")
        raise AssertionError(f"guest did not power off within {timeout:g} s; console:\n"
                             f"{out[-4000:]}") from None
    return BootResult(proc.stdout.decode(errors="replace"), time.monotonic() - start,
                      proc.returncode)


class ReportError(AssertionError):
    """The guest's report is missing, malformed or says something failed."""


def parse_report(output: str) -> dict[str, str]:
    """Results between @@BEGIN and @@END; every key exactly once."""
    lines = [ln.rstrip("\r") for ln in output.splitlines()]
    try:
        begin = lines.index("@@BEGIN")
        end = lines.index("@@END", begin)
    except ValueError:
        raise ReportError(f"guest report incomplete; console tail:\n{output[-4000:]}") from None
    errors = [ln for ln in lines if ln.startswith("@@ERROR")]
    if errors:
        raise ReportError("guest reported errors: " + "; ".join(errors))
    report: dict[str, str] = {}
    for ln in lines[begin + 1:end]:
        if not ln.startswith("@@R "):
            continue  # kernel messages interleave with the script's output
        parts = ln.split(" ", 2)
        if len(parts) != 3 or not parts[1]:
            raise ReportError(f"malformed result line: {ln!r}")
        if parts[1] in report:
            raise ReportError(f"result {parts[1]!r} reported twice")
        report[parts[1]] = parts[2]
    return report


def feature_bits(sysfs_features: str) -> int:
    """The 0/1 string of /sys/bus/virtio/devices/*/features (bit 0 first)."""
    if not sysfs_features or set(sysfs_features) - {"0", "1"}:
        raise ReportError(f"not a feature string: {sysfs_features!r}")
    return sum(1 << i for i, c in enumerate(sysfs_features) if c == "1")


# Shell helpers the checks scripts can call. Each prints @@R lines keyed by a
# tag; the host decides what the values must be.
SHELL_LIB = r"""
virtio_dir() {  # $1: PCI slot number in hex, e.g. 05
    for d in /sys/bus/pci/devices/0000:00:$1.0/virtio*; do
        [ -d "$d" ] && { echo "$d"; return 0; }
    done
    return 1
}

wait_for() {  # $1: path; the device node may appear a little after probe
    i=0
    while [ ! -e "$1" ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i+1)); done
    [ -e "$1" ]
}

report_virtio() {  # $1 tag, $2 slot
    d=$(virtio_dir $2) || { echo "@@ERROR $1: no virtio device at slot $2"; return 1; }
    echo "@@R $1.device $(cat $d/device)"
    echo "@@R $1.features $(cat $d/features)"
}

# blk_rw TAG SLOT BLOCKS OFFSETS...: write random data at each 4 KiB block
# offset with O_DIRECT, read it back with O_DIRECT, compare; report the
# sha256 so the host can check its disk file too.
blk_rw() {
    tag=$1; slot=$2; count=$3; shift 3
    d=$(virtio_dir $slot) || { echo "@@ERROR $tag: no virtio device at slot $slot"; return 1; }
    name=$(ls $d/block 2>/dev/null)
    wait_for /dev/$name || { echo "@@ERROR $tag: no block node"; return 1; }
    echo "@@R $tag.size $(blockdev --getsize64 /dev/$name)"
    for off in "$@"; do
        dd if=/dev/urandom of=/tmp/pat bs=4096 count=$count 2>/dev/null
        dd if=/tmp/pat of=/dev/$name bs=4096 seek=$off count=$count oflag=direct conv=notrunc 2>/dev/null \
            || echo "@@ERROR $tag: write at $off failed"
        dd if=/dev/$name of=/tmp/back bs=4096 skip=$off count=$count iflag=direct 2>/dev/null \
            || echo "@@ERROR $tag: read at $off failed"
        if cmp -s /tmp/pat /tmp/back; then r=same; else r=differs; fi
        echo "@@R $tag.rw.$off $r $(sha256sum < /tmp/pat | cut -d' ' -f1)"
    done
}

# blk_rebind TAG SLOT COUNT OFFSET: unbind and rebind virtio_blk (a device
# reset and a fresh start of its rings through the VMM), then read COUNT
# blocks at OFFSET again and report their sha256.
blk_rebind() {
    tag=$1; slot=$2; count=$3; off=$4
    d=$(virtio_dir $slot) || { echo "@@ERROR $tag: no virtio device at slot $slot"; return 1; }
    dev=$(basename $d)
    echo $dev > /sys/bus/virtio/drivers/virtio_blk/unbind || echo "@@ERROR $tag: unbind failed"
    echo $dev > /sys/bus/virtio/drivers/virtio_blk/bind || echo "@@ERROR $tag: bind failed"
    i=0
    while [ -z "$(ls $d/block 2>/dev/null)" ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i+1)); done
    name=$(ls $d/block 2>/dev/null)
    wait_for /dev/$name || { echo "@@ERROR $tag: no block node after rebind"; return 1; }
    dd if=/dev/$name of=/tmp/again bs=4096 skip=$off count=$count iflag=direct 2>/dev/null \
        || echo "@@ERROR $tag: read after rebind failed"
    echo "@@R $tag.rebind.$off $(sha256sum < /tmp/again | cut -d' ' -f1)"
}

# net_loop TAG SLOT NET: bring SLOT's interface up as 10.0.NET.1/24, make
# 10.0.NET.2 a neighbour at the interface's own address (so frames to it
# go out without ARP and, on a device that loops, come straight back), ping
# it with small and large frames (no reply comes: forwarding is off), and
# report the interface's packet counts.
net_loop() {
    tag=$1; slot=$2; net=$3
    d=$(virtio_dir $slot) || { echo "@@ERROR $tag: no virtio device at slot $slot"; return 1; }
    echo "@@R $tag.features $(cat $d/features)"
    ifc=$(ls $d/net 2>/dev/null)
    [ -n "$ifc" ] || { echo "@@ERROR $tag: no network interface"; return 1; }
    mac=$(cat /sys/class/net/$ifc/address)
    ip link set $ifc up
    ip addr add 10.0.$net.1/24 dev $ifc
    arp -i $ifc -s 10.0.$net.2 $mac
    ping -c 3 -W 1 -s 56 10.0.$net.2 >/dev/null 2>&1
    ping -c 3 -W 1 -s 1400 10.0.$net.2 >/dev/null 2>&1
    s=/sys/class/net/$ifc/statistics
    echo "@@R $tag.tx $(cat $s/tx_packets) $(cat $s/tx_bytes)"
    echo "@@R $tag.rx $(cat $s/rx_packets) $(cat $s/rx_bytes)"
    echo "@@R $tag.rx_errors $(cat $s/rx_errors) $(cat $s/rx_length_errors)"
}

# rng_read TAG SLOT HWRNG BYTES: make HWRNG (virtio_rng.N, numbered in probe
# order) the current hwrng, check it sits on SLOT's virtio device, read BYTES.
rng_read() {
    tag=$1; slot=$2; hw=$3; bytes=$4
    report_virtio $tag $slot || return 1
    echo $hw > /sys/class/misc/hw_random/rng_current 2>/dev/null
    echo "@@R $tag.current $(cat /sys/class/misc/hw_random/rng_current)"
    dd if=/dev/hwrng of=/tmp/rng bs=$bytes count=1 iflag=fullblock 2>/dev/null
    echo "@@R $tag.bytes $(wc -c < /tmp/rng)"
    echo "@@R $tag.distinct $(od -An -v -tx1 /tmp/rng | tr -s ' ' '\n' | grep . | sort -u | wc -l)"
}
"""
