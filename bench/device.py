"""4 KiB request round trips per second: reference driver -> reference blk
device, in process, split and packed, with and without VIRTIO_F_SWIOTLB.

A round trip is one request submitted, processed by the device (on the
kick, synchronously) and collected by the driver. Requests alternate a
4 KiB write and a 4 KiB read of the same sectors, and the caller's data
lives in guest RAM (``GuestBuffer``): without SWIOTLB the device reads and
writes it in place; with SWIOTLB the driver bounces every byte through
the device's bounce region, which is the cost the ratio shows.

    .venv/bin/python bench/device.py [--seconds S] [--backend c|python]
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

from device_ref.devices.blk import BlkDevice, BlkOptions, MemoryStorage
from device_ref.driver.blk import BlkDriver
from device_ref.driver.core import ALL, DriverOptions
from device_ref.ring import default_backend
from device_ref.transport import BounceRegion
from device_ref.transport_inproc import InProcTransport

BOUNCE = BounceRegion(0x8000_1000, 4 << 20)
SIZE = 4096


class Setup:
    def __init__(self, packed: bool, swiotlb: bool) -> None:
        mask = ALL & ~((0 if packed else 1 << 34) | (0 if swiotlb else 1 << 44))
        self.dev = BlkDevice(MemoryStorage(64 << 20), BlkOptions(), bounce=BOUNCE)
        self.t = InProcTransport(self.dev, ram_size=16 << 20)
        self.drv = BlkDriver(self.t, DriverOptions(features=mask)).init()
        assert self.drv.swiotlb == swiotlb and (self.drv.layout == "packed") == packed
        self.buf = self.drv.alloc_guest(SIZE)
        self.t.memory.write(self.buf.addr, os.urandom(SIZE))
        for _ in range(256):  # warm up
            self.drv.wait(self.drv.submit_write(0, self.buf))

    def close(self) -> None:
        self.drv.shutdown()
        self.t.close()


def one(s: Setup, seconds: float) -> tuple[float, int]:
    drv, buf = s.drv, s.buf
    sectors = (64 << 20) // 512 - 8
    n = 0
    sector = 0
    t0 = time.perf_counter()
    deadline = t0 + seconds
    while True:
        for _ in range(128):
            w = drv.wait(drv.submit_write(sector, buf))
            r = drv.wait(drv.submit_read(sector, buf))
            if w.data[-1] or r.data[-1]:
                raise SystemExit(f"request failed with status {w.data[-1]}/{r.data[-1]}")
            sector = (sector + 8) % sectors
        n += 256
        now = time.perf_counter()
        if now >= deadline:
            break
    return n / (now - t0), n


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seconds", type=float, default=1.0, help="time per configuration (default 1)")
    p.add_argument("--rounds", type=int, default=5,
                   help="interleaved rounds; the median is reported (default 5)")
    p.add_argument("--backend", choices=("c", "python"), help="ring core backend (default: C if built)")
    args = p.parse_args(argv)
    if args.seconds <= 0 or args.rounds < 1:
        print("bench/device.py: error: --seconds and --rounds must be positive", file=sys.stderr)
        return 2
    if args.backend:
        os.environ["DEVICE_REF_RING"] = args.backend
    print(f"ring core backend: {default_backend()}; 4 KiB requests, alternating write/read")
    print(f"{'layout':8} {'SWIOTLB':8} {'round trips/s':>14} {'MB/s':>8} {'requests':>9}")
    configs = [(packed, swiotlb) for packed in (False, True) for swiotlb in (False, True)]
    setups = {c: Setup(*c) for c in configs}
    rates: dict[tuple[bool, bool], list[float]] = {c: [] for c in configs}
    counts = dict.fromkeys(configs, 0)
    # Interleave the configurations so machine noise hits them alike.
    for _ in range(args.rounds):
        for c in configs:
            rate, n = one(setups[c], args.seconds / args.rounds)
            rates[c].append(rate)
            counts[c] += n
    for s in setups.values():
        s.close()
    results = {c: statistics.median(r) for c, r in rates.items()}
    for (packed, swiotlb), rate in results.items():
        print(f"{'packed' if packed else 'split':8} {'on' if swiotlb else 'off':8} "
              f"{rate:14,.0f} {rate * SIZE / 1e6:8.1f} {counts[packed, swiotlb]:9,}")
    for packed in (False, True):
        ratio = results[packed, True] / results[packed, False]
        print(f"ratio SWIOTLB/plain, {'packed' if packed else 'split'}: {ratio:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
