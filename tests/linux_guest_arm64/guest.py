"""An arm64 Linux guest whose virtio-blk device sits behind a restricted DMA pool.

The recipe (docs/restricted-dma-pool.md walks through it):

* ``dump_dtb`` has QEMU's ``virt`` machine write its device tree;
  ``add_pool`` adds a ``reserved-memory`` node compatible with
  ``restricted-dma-pool`` and, unless told not to (the negative control),
  a ``memory-region`` reference to it on the virtio-mmio transport the
  device lands on. The ``fdt`` package (pure Python, from PyPI) edits the
  blob, so no text round trip through ``dtc`` is needed.
* ``build_initramfs`` compiles ``guest_init.c`` static for arm64 and packs
  it as ``/init`` in an uncompressed cpio.
* ``boot`` starts ``qemu-system-aarch64`` (TCG) with guest RAM in a shared
  memfd, the edited tree (``-dtb``), modern virtio-mmio, and
  ``-device vhost-user-blk,iommu_platform=on`` on a Unix socket, and returns
  the console output once the guest powers off.
"""
from __future__ import annotations

import shutil
import stat
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import fdt

from tests.linux_guest.qemu_guest import _cpio_entry

HERE = Path(__file__).resolve().parent
QEMU = "qemu-system-aarch64"
CC = "aarch64-linux-gnu-gcc"
MEM = "256M"
MACHINE = ["-M", "virt", "-cpu", "cortex-a57", "-smp", "1", "-m", MEM]
# The pool: 4 MiB near the top of the 256 MiB of RAM (which starts at 1 GiB).
POOL_BASE, POOL_SIZE = 0x4E000000, 4 << 20
# QEMU's virt machine puts the first virtio-mmio device on the transport with
# the highest address (the guest's report says which one it probed).
TRANSPORT = "/virtio_mmio@a003e00"


class GuestSetupError(Exception):
    """The host lacks something the guest needs (QEMU, compiler, kernel)."""


def _need(tool: str, package: str) -> str:
    path = shutil.which(tool)
    if path is None:
        raise GuestSetupError(f"{tool} not found (install {package})")
    return path


def dump_dtb(work: Path) -> bytes:
    """The device tree QEMU's virt machine builds for MACHINE."""
    out = work / "virt.dtb"
    subprocess.run([_need(QEMU, "qemu-system-arm"), *MACHINE, "-machine", f"dumpdtb={out}",
                    "-nographic"], check=True, capture_output=True, timeout=60)
    return out.read_bytes()


def _next_phandle(tree: fdt.FDT) -> int:
    used = [0]
    for path, _nodes, props in tree.walk():
        for p in props:
            if p.name == "phandle":
                used.append(p.value)
    return max(used) + 1


def add_pool(dtb: bytes, base: int = POOL_BASE, size: int = POOL_SIZE,
             transport: str = TRANSPORT, reference: bool = True) -> bytes:
    """``dtb`` with a restricted-dma-pool at [base, base+size), referenced by
    ``transport``'s ``memory-region`` when ``reference`` is true."""
    tree = fdt.parse_dtb(dtb)
    if not tree.exist_node(transport):
        raise GuestSetupError(f"the machine's device tree has no {transport}")
    cells = (tree.get_property("#address-cells").value, tree.get_property("#size-cells").value)
    if cells != (2, 2):
        raise GuestSetupError(f"expected 2 address and 2 size cells at the root, got {cells}")
    handle = _next_phandle(tree)
    reserved = fdt.Node("reserved-memory")
    reserved.append(fdt.PropWords("#address-cells", 2))
    reserved.append(fdt.PropWords("#size-cells", 2))
    reserved.append(fdt.Property("ranges"))
    pool = fdt.Node(f"restricted-dma@{base:x}")
    pool.append(fdt.PropStrings("compatible", "restricted-dma-pool"))
    pool.append(fdt.PropWords("reg", base >> 32, base & 0xFFFFFFFF, size >> 32,
                              size & 0xFFFFFFFF))
    pool.append(fdt.PropWords("phandle", handle))
    reserved.append(pool)
    tree.add_item(reserved, "/")
    if reference:
        tree.get_node(transport).append(fdt.PropWords("memory-region", handle))
    return tree.to_dtb(version=17)


def describe_dtb(dtb: bytes) -> str:
    """The parts of the tree the recipe touched, as device-tree source."""
    tree = fdt.parse_dtb(dtb)
    parts = []
    for path in ("/reserved-memory", TRANSPORT):
        if tree.exist_node(path):
            parts.append(tree.get_node(path).to_dts())
    return "\n".join(parts)


def build_initramfs(work: Path) -> Path:
    """A cpio holding the static ``/init`` compiled from guest_init.c."""
    init = work / "init"
    subprocess.run([_need(CC, "gcc-aarch64-linux-gnu"), "-static", "-O2", "-Wall", "-Werror",
                    "-o", str(init), str(HERE / "guest_init.c")], check=True,
                   capture_output=True, timeout=120)
    entries = [("dev", stat.S_IFDIR | 0o755, b""), ("proc", stat.S_IFDIR | 0o755, b""),
               ("sys", stat.S_IFDIR | 0o755, b""),
               ("init", stat.S_IFREG | 0o755, init.read_bytes())]
    blob = b"".join(_cpio_entry(n, m, d, i + 1) for i, (n, m, d) in enumerate(entries))
    blob += _cpio_entry("TRAILER!!!", 0)
    dest = work / "initramfs.cpio"
    dest.write_bytes(blob)
    return dest


@dataclass
class Boot:
    output: str
    seconds: float
    returncode: int


def boot(kernel: Path, initrd: Path, dtb: Path, socket: Path, io_timeout: int = 20,
         timeout: float = 180.0, packed: bool = False) -> Boot:
    """Boot the guest against the vhost-user-blk back-end on ``socket``
    (QEMU asks for packed rings with ``packed``)."""
    cmd = [_need(QEMU, "qemu-system-arm"), *MACHINE, "-accel", "tcg",
           "-object", f"memory-backend-memfd,id=mem,size={MEM},share=on",
           "-machine", "memory-backend=mem", "-nodefaults", "-display", "none",
           "-no-reboot", "-serial", "stdio", "-kernel", str(kernel), "-initrd", str(initrd),
           "-dtb", str(dtb), "-append", f"console=ttyAMA0 panic=-1 iotimeout={io_timeout}",
           "-global", "virtio-mmio.force-legacy=false",
           "-chardev", f"socket,id=vu0,path={socket}",
           "-device", "vhost-user-blk,chardev=vu0,num-queues=1,iommu_platform=on"
           + (",packed=on" if packed else "")]
    start = time.monotonic()
    try:
        proc = subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, timeout=timeout)
    except subprocess.TimeoutExpired as exc:   # subprocess.run has killed QEMU
        out = (exc.stdout or b"").decode(errors="replace")
        raise AssertionError(f"guest did not power off within {timeout:g} s; console:\n"
                             f"{out[-4000:]}") from None
    return Boot(proc.stdout.decode(errors="replace"), time.monotonic() - start, proc.returncode)


def pattern(offset: int, length: int) -> bytes:
    """The bytes guest_init.c writes at ``offset`` (xorshift64* from the offset)."""
    x = ((offset + 1) * 0x9E3779B97F4A7C15) & 0xFFFFFFFFFFFFFFFF
    words = []
    for _ in range(length // 8):
        x ^= x >> 12
        x ^= (x << 25) & 0xFFFFFFFFFFFFFFFF
        x ^= x >> 27
        words.append((x * 0x2545F4914F6CDD1D) & 0xFFFFFFFFFFFFFFFF)
    return b"".join(w.to_bytes(8, "little") for w in words)
