#!/usr/bin/env python3
"""Block throughput: our vhost-user back-end against qemu-storage-daemon.

Two figures, each measured for both back-ends in the same run, with ratios:

1. 4 KiB random reads per second through our front-end and the reference
   driver (same driver code for both back-ends; ``--depth`` requests kept in
   flight), each back-end a separate process on a raw disk file.
2. Linux guest ``dd`` throughput (O_DIRECT, 1 MiB blocks, read and write)
   with both back-ends attached to one TCG guest through vhost-user-blk-pci
   (skipped with ``--no-guest``).

usage: bench/blk.py [--seconds S] [--depth N] [--rounds R] [--no-guest]
"""
from __future__ import annotations

import argparse
import os
import random
import shutil
import sys
import tempfile
import time
from collections import deque
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "linux_guest"))

from device_ref.driver.blk import BlkDriver  # noqa: E402
from device_ref.driver.core import DriverOptions  # noqa: E402
from device_ref.driver.errors import DriverError  # noqa: E402
from device_ref.transport import TransportError  # noqa: E402
from device_ref.vhost_user.frontend import VhostUserTransport  # noqa: E402
from device_ref.vhost_user.spawn import SpawnedBackend  # noqa: E402

QSD = "/usr/bin/qemu-storage-daemon"
DISK = 256 << 20


def start_ours(work: Path, name: str) -> SpawnedBackend:
    disk = work / f"{name}.img"
    with open(disk, "wb") as f:
        f.truncate(DISK)
    return SpawnedBackend([sys.executable, "-m", "device_ref.cli", "serve", "--type", "blk",
                           "--disk", str(disk), "--socket", "{socket}", "--quiet"],
                          str(work / f"{name}.sock"))


def start_qsd(work: Path, name: str) -> SpawnedBackend:
    disk = work / f"{name}.img"
    with open(disk, "wb") as f:
        f.truncate(DISK)
    return SpawnedBackend([QSD, "--blockdev", f"driver=file,node-name=d,filename={disk}",
                           "--export", "type=vhost-user-blk,id=e,node-name=d,addr.type=unix,"
                                       "addr.path={socket},writable=on"],
                          str(work / f"{name}.sock"))


def random_reads(sock: str, seconds: float, depth: int) -> float:
    """4 KiB random reads per second, ``depth`` in flight."""
    t = VhostUserTransport(sock, 2, ram_size=32 << 20, queue_size=256)
    drv = BlkDriver(t, DriverOptions(queue_size=256, timeout=10))
    try:
        drv.init()
        rnd = random.Random(1)
        blocks = drv.capacity // 8

        def submit():
            return drv.submit_read(rnd.randrange(blocks) * 8, 4096)

        inflight = deque(submit() for _ in range(depth))
        done = 0
        start = time.perf_counter()
        end = start + seconds
        while True:
            req = inflight.popleft()
            drv.finish(req, "bench read")
            done += 1
            now = time.perf_counter()
            if now >= end:
                break
            inflight.append(submit())
        rate = done / (now - start)
        while inflight:
            drv.finish(inflight.popleft(), "bench read")
        drv.shutdown()
        return rate
    finally:
        t.close()


GUEST_MB = 128


def guest_dd(work: Path) -> dict[str, tuple[float, float]]:
    """(read MB/s, write MB/s) per back-end, from one Linux guest boot."""
    import qemu_guest as g

    with start_ours(work, "guest-ours") as p1, start_qsd(work, "guest-qsd") as p2:
        script = g.SHELL_LIB + f"""
now() {{ cut -d' ' -f1 /proc/uptime; }}
for slot in 04 05; do
    d=$(virtio_dir $slot) || {{ echo "@@ERROR no device at $slot"; continue; }}
    name=$(ls $d/block); wait_for /dev/$name
    t0=$(now)
    dd if=/dev/zero of=/dev/$name bs=1M count={GUEST_MB} oflag=direct 2>/dev/null
    t1=$(now)
    dd if=/dev/$name of=/dev/null bs=1M count={GUEST_MB} iflag=direct 2>/dev/null
    t2=$(now)
    echo "@@R dd.$slot $t0 $t1 $t2"
done
"""
        initrd = g.build_initramfs(script, work / "bench-initrd", drivers=("blk",))
        result = g.run_guest(initrd, [g.VhostDevice("blk", p1.socket, 4),
                                      g.VhostDevice("blk", p2.socket, 5)], timeout=300)
        report = g.parse_report(result.output)
    out = {}
    for slot, who in (("04", "ours"), ("05", "qsd")):
        t0, t1, t2 = (float(x) for x in report[f"dd.{slot}"].split())
        out[who] = (GUEST_MB / max(t2 - t1, 0.01), GUEST_MB / max(t1 - t0, 0.01))
    return out


def measure(args: argparse.Namespace, work: Path) -> None:
    # Interleaved rounds, best of each: the machine may be busy with other
    # work, and that should not decide the ratio.
    rates = {"ours": 0.0, "qsd": 0.0}
    for _ in range(args.rounds):
        for who, start in (("ours", start_ours), ("qsd", start_qsd)):
            with start(work, who) as backend:
                rates[who] = max(rates[who], random_reads(backend.socket, args.seconds,
                                                          args.depth))
    print(f"4 KiB random reads, depth {args.depth}, best of {args.rounds} rounds of "
          f"{args.seconds:g} s, our front-end + reference driver:")
    print(f"  device-ref serve      {rates['ours']:10.0f} req/s")
    print(f"  qemu-storage-daemon   {rates['qsd']:10.0f} req/s")
    print(f"  ratio ours/qsd        {rates['ours'] / rates['qsd']:10.2f}")
    if args.no_guest:
        return
    dd = guest_dd(work)
    print(f"Linux guest dd, O_DIRECT, 1 MiB blocks, {GUEST_MB} MiB (TCG; guest clock 10 ms):")
    for who, label in (("ours", "device-ref serve"), ("qsd", "qemu-storage-daemon")):
        r, w = dd[who]
        print(f"  {label:20s}  read {r:8.1f} MB/s   write {w:8.1f} MB/s")
    print(f"  ratio ours/qsd        read {dd['ours'][0] / dd['qsd'][0]:8.2f}        "
          f"write {dd['ours'][1] / dd['qsd'][1]:8.2f}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=2.0, help="per back-end and round "
                                                             "(default 2)")
    ap.add_argument("--depth", type=int, default=32, help="requests in flight (default 32)")
    ap.add_argument("--rounds", type=int, default=2, help="interleaved rounds, best kept "
                                                          "(default 2)")
    ap.add_argument("--no-guest", action="store_true", help="skip the Linux guest dd figure")
    args = ap.parse_args()
    if not os.access(QSD, os.X_OK):
        print(f"bench: {QSD} missing (install qemu-system-common)", file=sys.stderr)
        return 2
    import qemu_guest as g
    work = Path(tempfile.mkdtemp(prefix="bench-blk-", dir="/tmp"))
    try:
        measure(args, work)
    except (TransportError, DriverError, g.GuestSetupError, AssertionError) as exc:
        print(f"bench: error: {str(exc).splitlines()[0]}", file=sys.stderr)
        return 1
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
