"""Wall time of the full conformance suite against the in-process reference
device (`ref`, target under 10 s), against the reference vhost-user
back-end (`device-ref serve` in another process), and with --qemu against
QEMU's own device models over PCI and MMIO (target under 30 s each, QEMU
start-up included), split and packed.

Vectors come from `specc vectors spec/*.vspec` into a temp dir (or
--vectors DIR). Prints, for one run of each: tests, verdict counts,
seconds, tests per second, and the ratios vhost-user / ref and ref / budget.

    .venv/bin/python bench/conformance.py [--vectors DIR] [--skip-vhost-user] [--qemu]
"""
from __future__ import annotations

import argparse
import glob
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

# This file is named like the package it measures: keep bench/ off the path.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

from conformance.select_adapter import parse_adapter  # noqa: E402
from conformance.adapters.base import AdapterOptions  # noqa: E402
from conformance.runner import RunOptions, run_suite  # noqa: E402
from conformance.vectors import load_suite  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
BUDGET_S = 10.0
QEMU_BUDGET_S = 30.0
QEMU_MODELS = ("qemu-pci:virtio-blk-pci", "qemu-pci:virtio-rng-pci", "qemu-pci:virtio-net-pci",
               "qemu-pci:virtio-serial-pci", "qemu-mmio:virtio-blk-device",
               "qemu-mmio:virtio-rng-device", "qemu-mmio:virtio-blk-device,force-legacy=on")


def make_vectors(out: Path) -> Path:
    files = sorted(glob.glob(str(ROOT / "spec" / "*.vspec")))
    subprocess.run([sys.executable, "-m", "specc.cli", "vectors", "-o", str(out), *files],
                   check=True, stdout=subprocess.DEVNULL)
    return out


def timed(suite, spec: str, dtype: str | None = None) -> tuple[float, Counter, int]:
    start = time.perf_counter()
    verdicts: Counter = Counter()
    n = 0
    for layout in ("split", "packed"):
        adapter = parse_adapter(spec, AdapterOptions(device_type=dtype))
        run = run_suite(suite, adapter, RunOptions(layout=layout))
        verdicts.update(r.verdict.value for r in run.results)
        n += len(run.results)
    return time.perf_counter() - start, verdicts, n


def line(name: str, seconds: float, verdicts: Counter, n: int) -> str:
    counts = " ".join(f"{k} {verdicts[k]}" for k in ("PASS", "REJECT", "FAIL", "WEDGED", "SKIP"))
    return f"{name:28} {n:4} tests  {seconds:7.2f} s  {n / seconds:7.1f} tests/s  [{counts}]"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--vectors", help="vector directory (default: compile spec/*.vspec)")
    ap.add_argument("--skip-vhost-user", action="store_true")
    ap.add_argument("--qemu", action="store_true",
                    help="also time QEMU's device models (one QEMU per model)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-conf-", dir="/tmp") as tmp:
        vectors = Path(args.vectors) if args.vectors else make_vectors(Path(tmp) / "vectors")
        suite = load_suite(vectors)
        print(f"{len(suite.tests())} vectors in {len(suite.files)} files; each run covers "
              f"split and packed")
        ref_s, ref_v, ref_n = timed(suite, "ref")
        print(line("ref (in-process, blk+rng)", ref_s, ref_v, ref_n))
        print(f"  ref / budget {BUDGET_S:g} s: {ref_s / BUDGET_S:.2f} "
              f"({'within' if ref_s < BUDGET_S else 'OVER'} budget)")
        if args.qemu:
            for spec in QEMU_MODELS:
                s, v, n = timed(suite, spec)
                print(line(spec, s, v, n) + f"  / budget {QEMU_BUDGET_S:g} s: "
                      f"{s / QEMU_BUDGET_S:.2f}")
        if args.skip_vhost_user:
            return 0
        total = 0.0
        for dtype in ("blk", "rng"):
            sock = os.path.join(tmp, f"{dtype}.sock")
            proc = subprocess.Popen([sys.executable, "-m", "device_ref.cli", "serve", "--type",
                                     dtype, "--socket", sock, "--swiotlb", "--quiet"],
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            try:
                deadline = time.monotonic() + 10
                while not os.path.exists(sock):
                    if proc.poll() is not None or time.monotonic() > deadline:
                        print(f"device-ref serve --type {dtype} did not start", file=sys.stderr)
                        return 1
                    time.sleep(0.02)
                s, v, n = timed(suite, f"vhost-user:{sock}", dtype)
                total += s
                print(line(f"vhost-user ref back-end {dtype}", s, v, n))
            finally:
                proc.terminate()
                proc.wait(5)
        print(f"  vhost-user (blk + rng) / ref: {total / ref_s:.1f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
