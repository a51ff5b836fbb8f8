#!/usr/bin/env python3
"""Block throughput: our vhost-user back-end against qemu-storage-daemon.

Two figures, each measured for both back-ends in the same run, with ratios:

1. 4 KiB random reads per second through our front-end and the reference
   driver (the same driver code for every back-end), at depths 1, 8, 32
   and 128: the driver keeps ``depth`` requests in flight, and as
   completions arrive it submits as many new ones in one batch with one
   kick (``VirtioDriver.wait_any``, ``kicks_held``). The disk is a file of
   random bytes, read once beforehand so every back-end finds it in the
   page cache; each measurement starts with a warm-up. Ours runs with
   ``--poll-us 100``: after serving a kick it looks for new buffers for
   100 microseconds before it sleeps (a sleeping back-end on a busy core
   waits for the scheduler to wake it), as long as such polls find work;
   and with ``--completion-batch 2``: it completes requests two at a time,
   interrupting after each group, so the driver refills the queue while
   the back-end serves the rest. The back-end
   process (and every thread it starts) runs on one core and the driver on
   another (``os.sched_setaffinity``), where the machine has two.
   qemu-storage-daemon is measured with its default thread pool and, when
   it starts here, with ``aio=io_uring`` and with ``aio=native`` (which
   needs ``cache.direct=on``); the target compares ours with the best of
   them. Rounds are interleaved; each figure is the median of the rounds,
   with the range.
2. Linux guest ``dd`` throughput (O_DIRECT, 1 MiB blocks, read and write)
   with both back-ends attached to one TCG guest through vhost-user-blk-pci
   (skipped with ``--no-guest``).

usage: bench/blk.py [--seconds S] [--rounds R] [--depths 1,8,32,128] [--no-guest]
"""
from __future__ import annotations

import argparse
import os
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "linux_guest"))
sys.path.insert(0, str(ROOT / "bench"))    # judge.py

from judge import machine, show_spread, spread, target  # noqa: E402

from device_ref.driver.blk import BlkDriver  # noqa: E402
from device_ref.driver.core import DriverOptions  # noqa: E402
from device_ref.driver.errors import DriverError  # noqa: E402
from device_ref.transport import TransportError  # noqa: E402
from device_ref.vhost_user.frontend import VhostUserTransport  # noqa: E402
from device_ref.vhost_user.spawn import SpawnedBackend, SpawnError  # noqa: E402

QSD = "/usr/bin/qemu-storage-daemon"
DISK = 256 << 20       # the guest figure's disks
BENCH_DISK = 64 << 20  # the random-read figure's disk: random bytes, in the page cache
WARMUP = 0.3

# qemu-storage-daemon's file driver options per variant
QSD_VARIANTS = {"qsd": "", "qsd io_uring": ",aio=io_uring", "qsd native": ",aio=native,cache.direct=on"}


POLL_US = 100        # device-ref serve --poll-us: look for new buffers this long after a kick
COMPLETION_BATCH = 2  # device-ref serve --completion-batch: interrupt after every 2 requests


def ours_command(disk: Path) -> list[str]:
    return [sys.executable, "-m", "device_ref.cli", "serve", "--type", "blk", "--disk", str(disk),
            "--socket", "{socket}", "--quiet", "--poll-us", str(POLL_US),
            "--completion-batch", str(COMPLETION_BATCH)]


def qsd_command(disk: Path, extra: str = "") -> list[str]:
    return [QSD, "--blockdev", f"driver=file,node-name=d,filename={disk}{extra}",
            "--export", "type=vhost-user-blk,id=e,node-name=d,addr.type=unix,"
                        "addr.path={socket},writable=on"]


def start_ours(work: Path, name: str) -> SpawnedBackend:
    disk = work / f"{name}.img"
    with open(disk, "wb") as f:
        f.truncate(DISK)
    return SpawnedBackend(ours_command(disk), str(work / f"{name}.sock"))


def start_qsd(work: Path, name: str) -> SpawnedBackend:
    disk = work / f"{name}.img"
    with open(disk, "wb") as f:
        f.truncate(DISK)
    return SpawnedBackend(qsd_command(disk), str(work / f"{name}.sock"))


def make_disk(path: Path) -> None:
    """Random bytes (no holes to read), then read once into the page cache."""
    rnd = random.Random(7)
    with open(path, "wb") as f:
        for _ in range(BENCH_DISK >> 20):
            f.write(rnd.randbytes(1 << 20))
    with open(path, "rb") as f:
        while f.read(1 << 20):
            pass


def pinning() -> tuple[set[int], set[int]] | None:
    """(driver cores, back-end cores): two different cores, or None on one."""
    cores = sorted(os.sched_getaffinity(0))
    return ({cores[0]}, {cores[1]}) if len(cores) >= 2 else None


def spawn_pinned(command: list[str], sock: str, pins) -> SpawnedBackend:
    """Start a back-end on the back-end core: a child and all its threads
    inherit the affinity it was started with."""
    if pins is None:
        return SpawnedBackend(command, sock)
    mine = os.sched_getaffinity(0)
    os.sched_setaffinity(0, pins[1])
    try:
        return SpawnedBackend(command, sock)
    finally:
        os.sched_setaffinity(0, mine)


def random_reads(sock: str, seconds: float, depth: int) -> float:
    """4 KiB random reads per second, ``depth`` in flight, after a warm-up."""
    t = VhostUserTransport(sock, 2, ram_size=32 << 20, queue_size=256)
    drv = BlkDriver(t, DriverOptions(queue_size=256, timeout=10))
    try:
        drv.init()
        rnd = random.Random(depth)
        blocks = drv.capacity // 8
        owner = {}

        def submit(buf) -> None:
            owner[drv.submit_read(rnd.randrange(blocks) * 8, buf).token] = buf

        with drv.kicks_held():
            for _ in range(depth):
                submit(drv.alloc_guest(4096))   # the driver's own RAM: no copy
        begin = time.perf_counter()
        start = begin + WARMUP
        end = start + seconds
        done = 0
        while True:
            reqs = drv.wait_any(0)
            now = time.perf_counter()
            for r in reqs:
                if r.error is not None or r.data != b"\0":
                    raise DriverError(f"read failed: {r.error or r.data!r}")
            if now >= start:
                if not done:
                    start = now
                done += len(reqs)
            if now >= end:
                break
            with drv.kicks_held():
                for r in reqs:
                    submit(owner.pop(r.token))
        rate = (done - len(reqs)) / (now - start) if now > start else 0.0
        while drv.outstanding():
            drv.wait_any(0)
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
    print(f"machine: {machine()}")
    depths = [int(d) for d in args.depths.split(",")]
    disk = work / "bench.img"
    make_disk(disk)
    pins = pinning()
    commands = {"ours": ours_command(disk)}
    commands.update({who: qsd_command(disk, extra) for who, extra in QSD_VARIANTS.items()})
    rates: dict[str, dict[int, list[float]]] = {who: {d: [] for d in depths} for who in commands}
    missing: dict[str, str] = {}
    # Interleaved rounds: load from other processes falls on every back-end alike.
    for _ in range(args.rounds):
        for who, command in commands.items():
            if who in missing:
                continue
            try:
                backend = spawn_pinned(command, str(work / f"{who.replace(' ', '-')}.sock"), pins)
            except SpawnError as exc:
                missing[who] = str(exc)
                continue
            with backend:
                if pins is not None:
                    os.sched_setaffinity(0, pins[0])
                for d in depths:
                    rates[who][d].append(random_reads(backend.socket, args.seconds, d))
    where = (f"driver on core {min(pins[0])}, back-ends on core {min(pins[1])}" if pins
             else "one core: nothing pinned")
    print(f"4 KiB random reads per second, median (range) of {args.rounds} interleaved rounds of "
          f"{args.seconds:g} s after {WARMUP:g} s warm-up; {BENCH_DISK >> 20} MiB file of random "
          f"bytes in the page cache; our front-end + reference driver, queue kept full; {where}:")
    print(f"  {'back-end':30s}" + "".join(f"{'depth ' + str(d):>26s}" for d in depths))
    for who in commands:
        if who in missing:
            print(f"  {who:30s} unavailable: {missing[who]}")
            continue
        label = "device-ref serve" if who == "ours" else who.replace("qsd", "qemu-storage-daemon")
        print(f"  {label:30s}" + "".join(f"{show_spread(rates[who][d], '{:.0f}'):>26s}"
                                          for d in depths))
    print(f"machine after: {machine()}")
    for d in depths:
        theirs = {who: spread(rates[who][d])[0] for who in commands if who != "ours" and who not in missing}
        best = max(theirs, key=theirs.get)
        ratio = spread(rates["ours"][d])[0] / theirs[best]
        print(target(f"blk back-end / {best} at depth {d}", ratio, ">= 1.0x", ratio >= 1.0,
                     "{:.2f}x"))
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
    ap.add_argument("--seconds", type=float, default=1.5, help="per back-end, depth and round "
                                                             "(default 1.5)")
    ap.add_argument("--depths", default="1,8,32,128", help="requests in flight, comma-separated "
                                                           "(default 1,8,32,128)")
    ap.add_argument("--rounds", type=int, default=3, help="interleaved rounds, median kept "
                                                          "(default 3)")
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
