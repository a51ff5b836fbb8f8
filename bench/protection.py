"""Buffer protection, measured: no protection, SWIOTLB bounce buffering,
AES-256-GCM and ChaCha20-Poly1305 queue encryption, at 64 B, 512 B, 4 KiB
and 64 KiB, in one run, beside raw memcpy and raw ``cryptography`` AEAD.

Three figures per row, all on one core, in one process:

* end to end: requests through the reference driver and a reference device
  model. The device is the loopback device (``device_ref.devices.echo``,
  built on ``VirtioDevice``): each request carries a buffer of the size to
  the device and the device writes the same bytes back, so both directions
  are exercised and every size is possible. The driver drives the queue as
  a ``Stream`` (device_ref.driver.stream): batches of ``--depth`` requests,
  one ring call and one notification per batch. The caller's data lives in
  guest RAM: unprotected, the device reads and writes it in place; under
  SWIOTLB the driver bounces it through slots in the device's region; under
  queue encryption the driver seals it into a slot and opens the reply from
  a private copy, and the device opens from a private copy and seals.
  Bytes per second count both directions (2 x size per request).
* layer: the per-buffer work of the protection alone, with the functions
  the data path uses: for encryption the producer's seal straight into a
  slot and the consumer's open from a private copy
  (``codec.seal_part_into``, ``codec.open_part_into``); for SWIOTLB the
  bounce copy into a slot. One direction, ``size`` bytes per call.
* raw: the fastest way this Python has to do the same bytes' work once:
  memcpy between two buffers (memoryview slice assignment), and one AEAD
  seal plus one open (the least a protected buffer needs: its producer
  seals, its consumer opens), the better of ``encrypt``/``decrypt`` and
  ``encrypt_into``/``decrypt_into``.

Every figure is the best of several interleaved rounds (default 15), so
load from other processes, which only ever slows a round down, affects
protected and raw figures alike.

    .venv/bin/python bench/protection.py [--seconds S] [--rounds N] [--depth D]
        [--json PATH] [--svg PATH]          (default: docs/protection/)
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

from cryptography.hazmat.primitives.ciphers.aead import AESGCM, ChaCha20Poly1305

from device_ref.devices.echo import EchoDevice
from device_ref.driver.core import DriverOptions
from device_ref.driver.echo import EchoDriver
from device_ref.qenc import enable_device, enable_driver
from device_ref.qenc import algorithms as alg
from device_ref.qenc.codec import open_part_into, seal_part_into
from device_ref.qenc.nonce import AAD_LAYOUT, NONCE_LAYOUT, TO_DEVICE
from device_ref.ring import SPLIT, DeviceQueue, DriverQueue, GuestMemory, place_rings
from device_ref.ring.batch import (POPPED, SEG, USED, WRITTEN, WRITTEN_AT, ChainBatch, PopBatch,
                                   UsedBatch)
from device_ref.swiotlb import BouncePool
from device_ref.transport import BounceRegion
from device_ref.transport_inproc import InProcTransport

MODES = ("none", "swiotlb", "aes-256-gcm", "chacha20-poly1305")
SIZES = (64, 512, 4096, 65536)
BOUNCE = BounceRegion(0x8000_1000, 16 << 20)
ROOT = Path(__file__).resolve().parents[1]
PRIMITIVES = {"aes-256-gcm": AESGCM, "chacha20-poly1305": ChaCha20Poly1305}
TARGETS = {  # mode -> (sizes, fraction of the raw reference)
    "aes-256-gcm": ((4096, 65536), 0.70),
    "chacha20-poly1305": ((4096, 65536), 0.70),
    "swiotlb": ((65536,), 0.50),
}


class Path_:
    """One mode: device, transport, driver, a stream of ``depth`` requests
    and the caller's buffers for them."""

    def __init__(self, mode: str, size: int, depth: int) -> None:
        self.size = size
        self.depth = depth
        self.dev = EchoDevice(BOUNCE if mode == "swiotlb" else None, packed=False)
        if mode in PRIMITIVES:
            enable_device(self.dev)
        self.t = InProcTransport(self.dev, ram_size=48 << 20)
        self.drv = EchoDriver(self.t, DriverOptions(queue_size=256))
        if mode in PRIMITIVES:
            enable_driver(self.drv, mode)
        self.drv.init()
        assert self.drv.swiotlb == (mode == "swiotlb")
        assert bool(self.drv.negotiated >> 45 & 1) == (mode in PRIMITIVES)
        self.stream = self.drv.stream(0, size, size, depth)
        mem = self.t.memory
        self.pairs = [(self.drv.alloc_guest(size), self.drv.alloc_guest(size))
                      for _ in range(depth)]
        data = [os.urandom(size) for _ in range(depth)]
        for (src, _dst), d in zip(self.pairs, data):
            mem.write(src.addr, d)
        for _ in range(3):
            if self.stream.run(self.pairs) != [size] * depth:
                raise SystemExit(f"bench/protection.py: {mode} at {size} B: short replies")
        if any(mem.read(dst.addr, size) != d for (_src, dst), d in zip(self.pairs, data)):
            raise SystemExit(f"bench/protection.py: {mode} at {size} B returned wrong data")
        if mode in PRIMITIVES and size >= 64:
            # what the device was handed is ciphertext, not the caller's bytes
            out = self.stream._out_addr[0]
            if any(mem.read(out, size) == d for d in data):
                raise SystemExit(f"bench/protection.py: {mode} at {size} B: plaintext on the ring")

    def run(self) -> None:
        self.stream.run(self.pairs)

    def close(self) -> None:
        self.drv.shutdown()
        self.t.close()


def _rate(fn, seconds: float, bytes_per_call: int) -> float:
    """Bytes per second of ``fn`` over about ``seconds``."""
    n = 0
    batch = 8
    t0 = time.perf_counter()
    deadline = t0 + seconds
    while True:
        for _ in range(batch):
            fn()
        n += batch
        now = time.perf_counter()
        if now >= deadline:
            return n * bytes_per_call / (now - t0)
        if now - t0 < seconds / 20:
            batch *= 2


def raw_memcpy(size: int):
    src = memoryview(bytearray(os.urandom(size)))
    dst = memoryview(bytearray(size))

    def copy() -> None:
        dst[:] = src     # memoryview to memoryview: one memcpy (a bytearray
    return copy          # target would copy through a temporary first)


def raw_aead(mode: str, size: int, into: bool):
    aead = PRIMITIVES[mode](os.urandom(32))
    data = os.urandom(size)
    nonce = bytes(12)
    if not into:
        def seal_open() -> None:
            aead.decrypt(nonce, aead.encrypt(nonce, data, None), None)
        return seal_open
    sealed = memoryview(bytearray(size + alg.TAG_LEN))
    plain = memoryview(bytearray(size))

    def seal_open_into() -> None:
        aead.encrypt_into(nonce, data, None, sealed)
        aead.decrypt_into(nonce, sealed, None, plain)
    return seal_open_into


def bare_loop(mode: str, size: int, depth: int):
    """The least a correct Python driver and device can do per request:
    straight ring-core calls plus the protection's unavoidable work, and
    nothing else (no checks, no layers, no device type; the device answers
    from the bytes it received). SWIOTLB: the bounce copy in, the device's
    copy from the readable to the writable slot, the bounce copy out.
    Encryption: the four cipher calls, each opener working on its private
    copy of the sealed part. An upper bound for the end-to-end figure, not
    an implementation."""
    enc = mode in PRIMITIVES
    tag = alg.TAG_LEN if enc else 0
    stride = (size + tag + 63) & ~63
    base, data = 0x10000, 0x10000 + 2 * depth * stride
    ram = bytearray(data + 2 * depth * size)
    mem = GuestMemory()
    mem.add_region(0, ram)
    view = memoryview(ram)
    cfg = place_rings(SPLIT, 256, 0x1000)
    drv_q, dev_q = DriverQueue(mem, cfg), DeviceQueue(mem, cfg)
    out_slots = [base + 2 * p * stride for p in range(depth)]
    in_slots = [a + stride for a in out_slots]
    srcs = [view[data + p * size:data + (p + 1) * size] for p in range(depth)]
    dsts = [view[data + (depth + p) * size:data + (depth + p + 1) * size] for p in range(depth)]
    outs = [view[a:a + size + tag] for a in out_slots]
    ins = [view[a:a + size + tag] for a in in_slots]
    chains = ChainBatch(depth, 2 * depth)
    for p in range(depth):
        chains.append_pair(out_slots[p], size + tag, in_slots[p], size + tag, p)
    popped, used = PopBatch(depth, 256), UsedBatch(depth)
    written = WRITTEN.pack_into
    private = memoryview(bytearray(size + tag))
    plain = memoryview(bytearray(size))
    if enc:
        algorithm = alg.number(mode)
        drv_aead = alg.aead(algorithm, bytes(32))
        dev_aead = alg.aead(algorithm, bytes(32))
        pack = NONCE_LAYOUT.pack
        to_dev = AAD_LAYOUT.pack(size, 0, 0, algorithm)
        to_drv = AAD_LAYOUT.pack(size, 0, 1, algorithm)
    counter = [0]

    def sealed() -> None:
        c = counter[0]
        for p in range(depth):
            drv_aead.encrypt_into(pack(c + p, 0, 0), srcs[p], to_dev, outs[p])
        drv_q.add_batch(chains)
        n = dev_q.pop_batch(popped)
        seg = SEG.iter_unpack(popped.segs).__next__
        for i in range(n):
            a, la, _ = seg()
            b, lb, _ = seg()
            private[:] = view[a:a + la]
            dev_aead.decrypt_into(pack(c + i, 0, 0), private, to_dev, plain)
            dev_aead.encrypt_into(pack(c + i, 0, 1), plain, to_drv, view[b:b + lb])
            written(popped.chains, POPPED.size * i + WRITTEN_AT, lb)
        dev_q.push_batch(popped)
        m = drv_q.collect_batch(used)
        for p, _n, _ in USED.iter_unpack(memoryview(used.entries)[:USED.size * m]):
            private[:] = ins[p]
            drv_aead.decrypt_into(pack(c + p, 0, 1), private, to_drv, dsts[p])
        counter[0] = c + depth

    def bounced() -> None:
        for p in range(depth):
            outs[p][:] = srcs[p]
        drv_q.add_batch(chains)
        n = dev_q.pop_batch(popped)
        seg = SEG.iter_unpack(popped.segs).__next__
        for i in range(n):
            a, la, _ = seg()
            b, lb, _ = seg()
            view[b:b + la] = view[a:a + la]
            written(popped.chains, POPPED.size * i + WRITTEN_AT, la)
        dev_q.push_batch(popped)
        m = drv_q.collect_batch(used)
        for p, n, _ in USED.iter_unpack(memoryview(used.entries)[:USED.size * m]):
            dsts[p][:n] = ins[p][:n]
    batch = sealed if enc else bounced
    for p in range(depth):
        srcs[p][:] = os.urandom(size)
    batch()
    if any(bytes(srcs[p]) != bytes(dsts[p]) for p in range(depth)):
        raise SystemExit(f"bench/protection.py: bare loop {mode} at {size} B returned wrong data")
    return batch


def layer_encryption(mode: str, size: int, mem, src: int, slot: int):
    """One buffer through the protection, with the data path's functions:
    the producer seals the caller's bytes straight into a slot of shared
    memory; the consumer copies the sealed part into private memory and
    opens it there."""
    algorithm = alg.number(mode)
    aead = alg.aead(algorithm, os.urandom(32))
    plaintext = mem.translate(src, size)
    shared = mem.translate(slot, size + alg.TAG_LEN)
    private = memoryview(bytearray(size + alg.TAG_LEN))
    out = memoryview(bytearray(size))
    counter = [0]

    def one() -> None:
        n = counter[0]
        counter[0] = n + 1
        seal_part_into(aead, algorithm, 0, TO_DEVICE, n, plaintext, shared)
        open_part_into(aead, algorithm, 0, TO_DEVICE, n, shared, private, out, size)
    return one


def layer_swiotlb(size: int, p: Path_):
    """The driver's bounce of one caller buffer into its slot in the region,
    as ``Stream.submit`` does it."""
    assert isinstance(p.drv.dma, BouncePool)
    slot = p.stream._out_slot[0][:size]
    src = p.t.memory.translate(p.pairs[0][0].addr, size)

    def one() -> None:
        slot[:] = src
    return one


def machine() -> dict:
    model = ""
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=False).stdout
        model = next((ln.split(":", 1)[1].strip() for ln in out.splitlines()
                      if ln.startswith("Model name")), "")
    except OSError:
        pass
    import cryptography
    return {"cpu": model or platform.processor(), "cores": os.cpu_count(),
            "python": platform.python_version(), "cryptography": cryptography.__version__}


def measure(seconds: float, rounds: int, depth: int) -> dict:
    rows = []
    per = seconds / rounds
    for size in SIZES:
        paths = {m: Path_(m, size, depth) for m in MODES}
        plain = paths["none"]
        src = plain.pairs[0][0].addr
        slot = plain.drv.alloc_guest(size + alg.TAG_LEN).addr
        fns = {("e2e", m): (paths[m].run, 2 * size * depth) for m in MODES}
        fns[("raw", "memcpy")] = (raw_memcpy(size), size)
        for m in PRIMITIVES:
            fns[("raw", m)] = (raw_aead(m, size, into=False), size)
            fns[("raw_into", m)] = (raw_aead(m, size, into=True), size)
            fns[("layer", m)] = (layer_encryption(m, size, plain.t.memory, src, slot), size)
            fns[("floor", m)] = (bare_loop(m, size, depth), 2 * size * depth)
        fns[("floor", "swiotlb")] = (bare_loop("swiotlb", size, depth), 2 * size * depth)
        fns[("layer", "swiotlb")] = (layer_swiotlb(size, paths["swiotlb"]), size)
        got: dict = {k: [] for k in fns}
        for _ in range(rounds):   # interleaved, so noise hits every figure alike
            for k, (fn, nbytes) in fns.items():
                got[k].append(_rate(fn, per / len(fns), nbytes))
        # Best of the interleaved rounds: other processes on the machine only
        # ever slow a measurement down, so each figure's best round is the
        # closest to its uncontended speed, for protected and raw alike.
        best = {k: max(v) for k, v in got.items()}
        for m in PRIMITIVES:   # raw AEAD: whichever API style was faster
            best[("raw", m)] = max(best[("raw", m)], best.pop(("raw_into", m)))
        for m in MODES:
            raw_key = ("raw", "memcpy") if m in ("none", "swiotlb") else ("raw", m)
            row = {"size": size, "mode": m,
                   "e2e_Bps": best[("e2e", m)],
                   "vs_none": best[("e2e", m)] / best[("e2e", "none")],
                   "raw_kind": raw_key[1], "raw_Bps": best[raw_key],
                   "e2e_vs_raw": best[("e2e", m)] / best[raw_key]}
            if ("layer", m) in best:
                row["layer_Bps"] = best[("layer", m)]
                row["layer_vs_raw"] = best[("layer", m)] / best[raw_key]
            if ("floor", m) in best:
                row["floor_Bps"] = best[("floor", m)]
                row["floor_vs_raw"] = best[("floor", m)] / best[raw_key]
            rows.append(row)
        for p in paths.values():
            p.close()
    return {"machine": machine(), "seconds": seconds, "rounds": rounds, "depth": depth,
            "rows": rows, "targets": targets(rows)}


def targets(rows: list[dict]) -> list[dict]:
    out = []
    for mode, (sizes, frac) in TARGETS.items():
        for size in sizes:
            r = next(x for x in rows if x["mode"] == mode and x["size"] == size)
            t = {"mode": mode, "size": size, "target": frac,
                 "layer_vs_raw": r["layer_vs_raw"], "layer_met": r["layer_vs_raw"] >= frac,
                 "e2e_vs_raw": r["e2e_vs_raw"], "e2e_met": r["e2e_vs_raw"] >= frac}
            if "floor_vs_raw" in r:
                t["floor_vs_raw"] = r["floor_vs_raw"]
            out.append(t)
    return out


def _size(n: int) -> str:
    return f"{n // 1024} KiB" if n >= 1024 else f"{n} B"


def table(result: dict) -> str:
    lines = [f"machine: {result['machine']['cpu']}, {result['machine']['cores']} cores; "
             f"cryptography {result['machine']['cryptography']}; depth {result['depth']}",
             f"{'size':>7} {'mode':18} {'e2e MB/s':>9} {'x none':>7} {'layer MB/s':>11} "
             f"{'raw':>18} {'raw MB/s':>9} {'e2e/raw':>8} {'layer/raw':>9} {'floor/raw':>9}"]

    def cell(r: dict, key: str, fmt: str, width: int) -> str:
        return format(r[key], fmt) if key in r else f"{'-':>{width}}"
    for r in result["rows"]:
        raw = "memcpy" if r["raw_kind"] == "memcpy" else r["raw_kind"] + " s+o"
        layer = f"{r['layer_Bps'] / 1e6:11,.0f}" if "layer_Bps" in r else f"{'-':>11}"
        lines.append(f"{_size(r['size']):>7} {r['mode']:18} {r['e2e_Bps'] / 1e6:9,.1f} "
                     f"{r['vs_none']:7.2f} {layer} {raw:>18} {r['raw_Bps'] / 1e6:9,.0f} "
                     f"{r['e2e_vs_raw']:8.3f} {cell(r, 'layer_vs_raw', '9.2f', 9)} "
                     f"{cell(r, 'floor_vs_raw', '9.2f', 9)}")
    lines.append("floor: a bare loop of ring calls and the protection's unavoidable work "
                 "(copies, cipher calls), nothing else: an upper bound for Python")
    lines.append("targets (fraction of raw at that size):")
    for t in result["targets"]:
        floor = f", floor {t['floor_vs_raw']:.2f}" if "floor_vs_raw" in t else ""
        lines.append(f"  {t['mode']:18} {_size(t['size']):>7} >= {t['target']:.2f}: "
                     f"layer {t['layer_vs_raw']:.2f} {'met' if t['layer_met'] else 'NOT met'}, "
                     f"end to end {t['e2e_vs_raw']:.3f} {'met' if t['e2e_met'] else 'NOT met'}"
                     f"{floor}")
    return "\n".join(lines)


COLOURS = {"none": "#4d4d4d", "swiotlb": "#1f77b4", "aes-256-gcm": "#d62728",
           "chacha20-poly1305": "#2ca02c"}


def svg(result: dict) -> str:
    """A grouped bar chart (log scale): end-to-end MB/s per mode at each size,
    with raw memcpy and raw AEAD seal+open as tick marks."""
    import math
    w, h, left, top, bottom = 760, 380, 70, 40, 60
    plot_h = h - top - bottom
    rows = result["rows"]
    vals = [r["e2e_Bps"] / 1e6 for r in rows] + [r["raw_Bps"] / 1e6 for r in rows]
    lo = 10 ** math.floor(math.log10(min(vals)))
    hi = 10 ** math.ceil(math.log10(max(vals)))

    def y(v: float) -> float:
        return top + plot_h * (1 - (math.log10(v) - math.log10(lo)) /
                               (math.log10(hi) - math.log10(lo)))
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" '
           f'viewBox="0 0 {w} {h}" font-family="sans-serif" font-size="11">',
           "<title>Buffer protection throughput, end to end, by buffer size</title>",
           f'<rect width="{w}" height="{h}" fill="white"/>',
           f'<text x="{left}" y="20" font-size="13">End-to-end MB/s (both directions), '
           f'log scale; ticks: raw memcpy (black) and raw AEAD seal+open (colour)</text>']
    e = int(math.log10(lo))
    while 10 ** e <= hi:
        yy = y(10 ** e)
        out.append(f'<line x1="{left}" y1="{yy:.1f}" x2="{w - 10}" y2="{yy:.1f}" '
                   f'stroke="#ddd"/><text x="{left - 6}" y="{yy + 4:.1f}" '
                   f'text-anchor="end">{10 ** e:,}</text>')
        e += 1
    group_w = (w - left - 20) / len(SIZES)
    bar_w = group_w / (len(MODES) + 1.5)
    for gi, size in enumerate(SIZES):
        gx = left + gi * group_w + bar_w * 0.75
        for mi, mode in enumerate(MODES):
            r = next(x for x in rows if x["size"] == size and x["mode"] == mode)
            v = r["e2e_Bps"] / 1e6
            x = gx + mi * bar_w
            out.append(f'<rect x="{x:.1f}" y="{y(v):.1f}" width="{bar_w * 0.9:.1f}" '
                       f'height="{top + plot_h - y(v):.1f}" fill="{COLOURS[mode]}">'
                       f'<title>{mode} {_size(size)}: {v:,.1f} MB/s</title></rect>')
            raw = r["raw_Bps"] / 1e6
            colour = "black" if r["raw_kind"] == "memcpy" else COLOURS[mode]
            out.append(f'<line x1="{x:.1f}" y1="{y(raw):.1f}" x2="{x + bar_w * 0.9:.1f}" '
                       f'y2="{y(raw):.1f}" stroke="{colour}" stroke-width="3"/>')
        out.append(f'<text x="{gx + bar_w * len(MODES) / 2:.1f}" y="{h - bottom + 18}" '
                   f'text-anchor="middle">{_size(size)}</text>')
    for mi, mode in enumerate(MODES):
        lx = left + mi * 160
        out.append(f'<rect x="{lx}" y="{h - 22}" width="12" height="12" fill="{COLOURS[mode]}"/>'
                   f'<text x="{lx + 16}" y="{h - 12}">{mode}</text>')
    out.append("</svg>")
    return "\n".join(out) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seconds", type=float, default=24.0,
                   help="total measuring time per buffer size (default 24)")
    p.add_argument("--rounds", type=int, default=15,
                   help="interleaved rounds, the best kept (default 15)")
    p.add_argument("--depth", type=int, default=32,
                   help="requests per batch through the driver's stream (default 32)")
    p.add_argument("--json", default=str(ROOT / "docs" / "protection" / "protection.json"))
    p.add_argument("--svg", default=str(ROOT / "docs" / "protection" / "protection.svg"))
    args = p.parse_args(argv)
    if args.seconds <= 0 or args.rounds < 1 or not 1 <= args.depth <= 64:
        print("bench/protection.py: error: --seconds and --rounds must be positive and "
              "--depth within 1..64", file=sys.stderr)
        return 2
    result = measure(args.seconds, args.rounds, args.depth)
    print(table(result))
    for path, text in ((args.json, json.dumps(result, indent=2, sort_keys=True) + "\n"),
                       (args.svg, svg(result))):
        try:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            Path(path).write_text(text)
        except OSError as exc:
            print(f"bench/protection.py: error: cannot write {path}: {exc.strerror}", file=sys.stderr)
            return 2
    print(f"wrote {args.json} and {args.svg}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
