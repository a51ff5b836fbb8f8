"""``device-ref selftest``: the reference driver against the reference devices,
in process, or with ``--qemu`` against QEMU's own virtio-blk and virtio-rng
models over the real PCI or MMIO transport (our driver, their device)."""
from __future__ import annotations

import argparse
import random
import struct
import time

from device_ref.cli_base import CliError
from device_ref.device.features import DEVICE_NEEDS_RESET, F_RING_PACKED, F_SWIOTLB, names
from device_ref.devices.blk import BlkDevice, BlkOptions, FileStorage, MemoryStorage
from device_ref.devices.rng import RngDevice
from device_ref.driver.blk import BlkDriver
from device_ref.driver.core import ALL, DriverOptions
from device_ref.driver.errors import DeviceNeedsReset, DriverError
from device_ref.driver.rng import RngDriver
from device_ref.qemu.machine import MachineSpec, QemuMachine, QemuSetupError
from device_ref.qemu.models import ModelError
from device_ref.transport import BounceRegion, TransportError
from device_ref.transport_inproc import RAM_BASE, InProcTransport

HELP = ("run the reference driver against the reference blk and rng devices in process, "
        "or against QEMU's models (--qemu)")
QEMU_MODES = {"pci": ("q35", "virtio-{}-pci", False), "mmio": ("microvm", "virtio-{}-device", True),
              "mmio-legacy": ("microvm", "virtio-{}-device", False)}
BOUNCE = BounceRegion(0x8000_1000, 1 << 20)
BLK_BITS = {1: "BLK_SIZE_MAX", 2: "BLK_SEG_MAX", 5: "BLK_RO", 6: "BLK_BLK_SIZE", 9: "BLK_FLUSH"}


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--device", choices=("blk", "rng", "all"), default="all")
    p.add_argument("--layout", choices=("split", "packed", "all"), default="all")
    p.add_argument("--swiotlb", choices=("on", "off", "both"), default="both")
    p.add_argument("--requests", type=int, default=64, metavar="N",
                   help="write/read pairs per combination (default 64)")
    p.add_argument("--seed", type=int, default=1, help="seed for request sizes and data")
    p.add_argument("--disk", metavar="FILE", help="back the blk device with FILE (created, 1 MiB)")
    p.add_argument("--bounce", choices=("pci", "mmio"), default="pci",
                   help="how the transport describes the bounce region")
    p.add_argument("--qemu", choices=tuple(QEMU_MODES), metavar="TRANSPORT",
                   help="drive QEMU's virtio-blk / virtio-rng models instead, over pci (q35), "
                        "mmio (microvm, version 2) or mmio-legacy (microvm, version 1)")
    p.add_argument("--qemu-binary", metavar="PATH",
                   help="the QEMU to run (default $CONFORMANCE_QEMU or qemu-system-x86_64)")
    p.add_argument("--qemu-arg", action="append", default=[], metavar="ARG",
                   help="one more QEMU argument (repeatable)")


def _mask(packed: bool, swiotlb: bool) -> int:
    m = ALL
    if not packed:
        m &= ~(1 << F_RING_PACKED)
    if not swiotlb:
        m &= ~(1 << F_SWIOTLB)
    return m


def _where(drv, t) -> str:
    q = drv.queue_config(0)
    inside = BOUNCE.contains(q.desc, 16)
    return f"rings at {q.desc:#x} ({'bounce region' if inside else 'guest RAM'})"


def _blk(args, packed: bool, swiotlb: bool, rnd: random.Random) -> list[str]:
    storage = FileStorage(args.disk, size=1 << 20) if args.disk else MemoryStorage(1 << 20)
    dev = BlkDevice(storage, BlkOptions(), bounce=BOUNCE)
    t = InProcTransport(dev, bounce_style=args.bounce)
    try:
        drv = BlkDriver(t, DriverOptions(features=_mask(packed, swiotlb))).init()
        out = _blk_requests(args, drv, rnd, _where(drv, t))
        if swiotlb:
            out.append("  " + _refusal(drv, t, dev))
        drv.shutdown()
    finally:
        t.close()
        if isinstance(storage, FileStorage):
            storage.close()
    return out


def _blk_requests(args, drv: BlkDriver, rnd: random.Random, where: str) -> list[str]:
    """Write/read pairs of random sizes and segment counts, each read checked
    against what was written, used lengths checked, then a flush and a read
    past the end."""
    out = [f"  negotiated {' '.join(names(drv.negotiated, BLK_BITS))}; {drv.layout} ring, {where}",
           f"  capacity {drv.capacity} sectors, seg_max {drv.seg_max}, id {drv.get_id().decode()!r}"]
    moved = 0
    t0 = time.perf_counter()
    for _ in range(args.requests):
        nsect = rnd.randint(1, 16)
        sector = rnd.randint(0, drv.capacity - nsect)
        data = rnd.randbytes(nsect * 512)
        segs = rnd.randint(1, 4)
        w = drv.wait(drv.submit_write(sector, data, segments=segs))
        r = drv.wait(drv.submit_read(sector, len(data), segments=segs))
        if drv.status_of(w) or drv.status_of(r) or r.data[:-1] != data:
            raise CliError(f"blk data mismatch at sector {sector}")
        if w.used_len != 1 or r.used_len != len(data) + 1:
            raise CliError(f"blk used lengths {w.used_len}/{r.used_len}, expected 1/{len(data) + 1}")
        moved += 2 * len(data)
    drv.flush()
    dt = time.perf_counter() - t0
    out.append(f"  {args.requests} write+read pairs, {moved} bytes verified, used lengths 1 and "
               f"data+1, flush ok ({dt * 1e3:.1f} ms; {drv.counters.kicks} kicks)")
    bad = drv.wait(drv.submit_read(drv.capacity, 512))
    out.append(f"  read past capacity -> status {drv.status_of(bad)} (IOERR=1), used length {bad.used_len}")
    return out


def _refusal(drv, t, dev) -> str:
    """Hand the device a buffer in guest RAM; it must refuse without touching RAM."""
    ram = t.ram.snapshot("ram")
    hdr = drv.dma.alloc(16)
    st = drv.dma.alloc(1)
    t.memory.write(hdr.addr, struct.pack("<IIQ", 0, 0, 0))
    req = drv.submit_segments(0, [(hdr.addr, 16)], [(RAM_BASE + 0x1000, 512), (st.addr, 1)])
    refused = bool(dev.read_status() & DEVICE_NEEDS_RESET)
    try:
        drv.wait(req)
        caught = "no error"
    except DeviceNeedsReset:
        caught = "DeviceNeedsReset"
    untouched = t.ram.snapshot("ram") == ram
    if not (refused and untouched and caught == "DeviceNeedsReset"):
        raise CliError("device accepted or touched a descriptor outside the bounce region")
    drv.init()
    return ("descriptor outside the bounce region: device set NEEDS_RESET, guest RAM unchanged "
            "byte for byte, driver reset cleanly")


def _qemu_spec(args, device: str, packed: bool) -> MachineSpec:
    machine, model, modern = QEMU_MODES[args.qemu]
    props = (("packed", "on"),) if packed else ()
    return MachineSpec(machine, model.format(device), props, mmio_modern=modern,
                       qemu=args.qemu_binary, extra_args=tuple(args.qemu_arg))


def _qemu_where(m: QemuMachine, drv) -> str:
    t = drv.t
    what = f"virtio-mmio version {t.version}" if t.kind == "mmio" else \
        f"virtio-pci, {t.msix_vectors} MSI-X vectors into guest RAM"
    return (f"rings at {drv.queue_config(0).desc:#x} (shared guest RAM); {what}; "
            f"QEMU up in {m.boot_seconds:.2f} s")


def _qemu_blk(args, packed: bool, swiotlb: bool, rnd: random.Random) -> list[str]:
    with QemuMachine(_qemu_spec(args, "blk", packed)) as m:
        drv = BlkDriver(m.transport(), DriverOptions(features=_mask(packed, False))).init()
        out = _blk_requests(args, drv, rnd, _qemu_where(m, drv))
        out.append(f"  {m.bus.accesses} register accesses through the gdbstub")
        drv.shutdown()
        drv.t.close()
    return out


def _qemu_rng(args, packed: bool, swiotlb: bool, rnd: random.Random) -> list[str]:
    with QemuMachine(_qemu_spec(args, "rng", packed)) as m:
        drv = RngDriver(m.transport(), DriverOptions(features=_mask(packed, False))).init()
        head = f"  negotiated {' '.join(names(drv.negotiated))}; {drv.layout} ring, {_qemu_where(m, drv)}"
        sizes = [rnd.randint(1, 256) for _ in range(args.requests)]
        got = []
        for n in sizes:
            data = drv.read(n)
            if not 1 <= len(data) <= n:
                raise CliError(f"rng used length {len(data)} for a {n}-byte buffer")
            got.append(data)
        blob = b"".join(got)
        if len(set(blob)) < min(16, len(blob) // 4):
            raise CliError(f"rng bytes look constant: {blob[:16].hex()}")
        drv.shutdown()
        drv.t.close()
    return [head, f"  {args.requests} requests, {len(blob)} bytes, {len(set(blob))} distinct values"]


def _rng(args, packed: bool, swiotlb: bool, rnd: random.Random) -> list[str]:
    dev = RngDevice(seed=args.seed, bounce=BOUNCE)
    t = InProcTransport(dev, bounce_style=args.bounce)
    try:
        drv = RngDriver(t, DriverOptions(features=_mask(packed, swiotlb))).init()
        sizes = [rnd.randint(1, 256) for _ in range(args.requests)]
        got = b"".join(drv.read(n) for n in sizes)
        gen = random.Random(args.seed)   # the device fills each buffer from this stream
        expected = b"".join(gen.randbytes(n) for n in sizes)
        if got != expected:
            raise CliError("rng bytes differ from the seeded generator")
        head = f"  negotiated {' '.join(names(drv.negotiated))}; {drv.layout} ring, {_where(drv, t)}"
        drv.shutdown()
        return [head, f"  {args.requests} requests, {len(got)} random bytes, equal to the seeded stream"]
    finally:
        t.close()


def run(args: argparse.Namespace) -> int:
    if args.requests < 1:
        raise CliError("--requests must be at least 1")
    devices = ("blk", "rng") if args.device == "all" else (args.device,)
    layouts = (False, True) if args.layout == "all" else (args.layout == "packed",)
    swiotlbs = {"on": (True,), "off": (False,), "both": (False, True)}[args.swiotlb]
    checks = {"blk": _blk, "rng": _rng}
    if args.qemu:
        if args.swiotlb == "on":
            raise CliError("QEMU's device models do not offer VIRTIO_F_SWIOTLB: use --swiotlb off")
        if args.disk:
            raise CliError("--disk is for the in-process device; QEMU gets a scratch image")
        swiotlbs = (False,)
        if args.qemu == "mmio-legacy" and args.layout == "packed":
            raise CliError("a legacy virtio-mmio device has no packed rings")
        if args.layout == "all":
            # QEMU 7.2 leaves VIRTQ_DESC_F_WRITE clear in used packed descriptors,
            # so a driver must ignore their lengths (docs/conformance.md): ask
            # for --layout packed to see it.
            print("packed rings: only with --layout packed (QEMU 7.2 clears "
                  "VIRTQ_DESC_F_WRITE in used descriptors; see docs/conformance.md)")
            layouts = (False,)
        checks = {"blk": _qemu_blk, "rng": _qemu_rng}
    rnd = random.Random(args.seed)
    runs = 0
    for device in devices:
        for packed in layouts:
            for swiotlb in swiotlbs:
                title = f"{device}: {'packed' if packed else 'split'}, SWIOTLB {'on' if swiotlb else 'off'}"
                if args.qemu:
                    title += f", QEMU {_qemu_spec(args, device, packed).label()}"
                print(title, flush=True)
                try:
                    lines = checks[device](args, packed, swiotlb, rnd)
                except (DriverError, TransportError, QemuSetupError, ModelError) as exc:
                    raise CliError(f"{title}: {exc}") from exc
                except OSError as exc:
                    raise CliError(f"{title}: {exc.strerror or exc}") from exc
                for line in lines:
                    print(line)
                runs += 1
    print(f"selftest passed: {runs} combinations")
    return 0
