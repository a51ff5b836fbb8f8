"""Ring core round-trip benchmark.

One round trip = driver adds a buffer, device pops it, device pushes it
used, driver collects it.  Measured in one run, on a split ring of 256
entries with batches of 256 one-segment buffers:

  plain C loop   the same round trip in C with no Python, no bounds checks
                 and no validation (compiled here with gcc -O2): the limit.
                 It does the same work on the same record formats: adds
                 one-segment chains from the chain/segment records (free
                 descriptor fifo, private chain links, token and writable
                 length per head), publishes the available index with a
                 release fence and reads the notification flag, pops into
                 popped-chain and segment records, pushes every chain used
                 with its writable length, publishes the used index, reads
                 the interrupt flag, collects into used records and frees
                 the descriptors.
  C batch API    DriverQueue.add_batch / DeviceQueue.pop_batch / push_batch /
                 DriverQueue.collect_batch on the C core: four Python calls
                 per batch of 256 round trips
  C core from C  the same four batch calls made from C (ring.c compiled here
                 with the flags of device_ref/ring/_build.py): the core
                 without the Python calls, to show where the time goes
  C per call     add / pop / push / collect, one Python call per operation
  Python batch   the batch API on the pure-Python backend
  Python per call

Targets (issue 23): C batch <= 1.5x the plain C loop, and >= 50x faster
than the Python twin's batch API. The C figures are measured in interleaved
rounds; the ratio is taken within each round and its median (with the
range) is judged.
Usage: .venv/bin/python bench/ring.py [--quick]
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))    # judge.py
from judge import machine, show_spread, target  # noqa: E402

from device_ref.ring import (ChainBatch, DeviceQueue, DriverQueue, GuestMemory, PopBatch, UsedBatch,  # noqa: E402
                             c_available, place_rings)

SIZE = 256
BATCH = 256
BUF_LEN = 64

PLAIN_C = r"""
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* the same records the ring core's batch API reads and writes (ring.h) */
struct desc { uint64_t addr; uint32_t len; uint16_t flags; uint16_t next; };
struct used_elem { uint32_t id; uint32_t len; };
struct seg { uint64_t addr; uint32_t len; uint32_t flags; };
struct add { uint32_t nseg, reserved; uint64_t indirect, token; };
struct popped { uint32_t id, nseg, wlen, written; };
struct used { uint64_t token; uint32_t len, reserved; };
#define N 256
#define B 256

static struct desc desc[N];
static struct { uint16_t flags, idx, ring[N], used_event; } avail;
static struct { uint16_t flags, idx; struct used_elem ring[N]; uint16_t avail_event; } used;
static uint16_t free_fifo[N], next_of[N]; static uint32_t free_head, free_count;
static uint64_t token[N]; static uint32_t wlen[N]; static uint16_t ndesc[N];
static uint16_t avail_shadow, last_used, last_avail, used_shadow;
static struct add in_chains[B]; static struct seg in_segs[B];
static struct popped out_chains[B]; static struct seg out_segs[B]; static struct used out_used[B];
static volatile uint64_t sink;

static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + t.tv_nsec * 1e-9; }

static void round_trip(void)
{
    /* driver: add B chains from the input records, publish, read the notify flag */
    const struct seg *s = in_segs;
    for (uint32_t k = 0; k < B; k++) {
        uint32_t n = in_chains[k].nseg, w = 0;
        uint16_t head = free_fifo[free_head], cur = head;
        free_head = (free_head + 1) & (N - 1); free_count--;
        for (uint32_t i = 0; i < n; i++) {
            uint16_t nxt = 0;
            if (i + 1 < n) { nxt = free_fifo[free_head]; free_head = (free_head + 1) & (N - 1); free_count--; }
            desc[cur].addr = s[i].addr; desc[cur].len = s[i].len;
            desc[cur].flags = (s[i].flags ? 2 : 0) | (i + 1 < n ? 1 : 0); desc[cur].next = nxt;
            if (s[i].flags) w += s[i].len;
            next_of[cur] = nxt; cur = nxt;
        }
        token[head] = in_chains[k].token; wlen[head] = w; ndesc[head] = (uint16_t)n;
        avail.ring[avail_shadow & (N - 1)] = head; avail_shadow++;
        s += n;
    }
    __atomic_thread_fence(__ATOMIC_RELEASE);
    avail.idx = avail_shadow;
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    sink += !(used.flags & 1);
    /* device: pop everything available into chain and segment records */
    uint16_t ai = avail.idx; uint32_t c = 0, base = 0;
    __atomic_thread_fence(__ATOMIC_ACQUIRE);
    while (last_avail != ai) {
        uint16_t h = avail.ring[last_avail & (N - 1)], i = h; uint32_t w = 0, n = 0;
        for (;;) {
            struct desc dd = desc[i];
            out_segs[base + n].addr = dd.addr; out_segs[base + n].len = dd.len;
            out_segs[base + n].flags = dd.flags & 2 ? 1 : 0; n++;
            if (dd.flags & 2) w += dd.len;
            if (!(dd.flags & 1)) break;
            i = dd.next;
        }
        out_chains[c].id = h; out_chains[c].nseg = n; out_chains[c].wlen = w; out_chains[c].written = 0;
        base += n; c++; last_avail++;
    }
    /* device: push them all used with their writable length, publish, read the interrupt flag */
    for (uint32_t k = 0; k < c; k++) {
        struct used_elem *e = &used.ring[(uint16_t)(used_shadow + k) & (N - 1)];
        e->id = out_chains[k].id; e->len = out_chains[k].wlen;
    }
    used_shadow += c;
    __atomic_thread_fence(__ATOMIC_RELEASE);
    used.idx = used_shadow;
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    sink += !(avail.flags & 1);
    /* driver: collect into used records, free the descriptors */
    uint16_t ui = used.idx; uint32_t g = 0;
    __atomic_thread_fence(__ATOMIC_ACQUIRE);
    while (last_used != ui) {
        struct used_elem e = used.ring[last_used & (N - 1)];
        out_used[g].token = token[e.id]; out_used[g].len = e.len; g++;
        uint16_t d = (uint16_t)e.id;
        for (uint32_t j = ndesc[e.id]; j; j--) {
            free_fifo[(free_head + free_count) & (N - 1)] = d; free_count++; d = next_of[d];
        }
        last_used++;
    }
    sink += out_used[B - 1].token + out_used[0].len;
}

int main(int argc, char **argv)
{
    long iters = argc > 1 ? atol(argv[1]) : 200000;
    for (uint32_t i = 0; i < N; i++) free_fifo[i] = (uint16_t)i;
    free_count = N;
    for (uint32_t k = 0; k < B; k++) {
        in_chains[k].nseg = 1; in_chains[k].token = k;
        in_segs[k].addr = 0x10000 + 64ull * k; in_segs[k].len = 64; in_segs[k].flags = 1;
    }
    for (long i = 0; i < iters / 10; i++) round_trip();
    double best = 1e30;
    for (int rep = 0; rep < 5; rep++) {
        double t0 = now();
        for (long i = 0; i < iters; i++) round_trip();
        double dt = (now() - t0) / ((double)iters * B);
        if (dt < best) best = dt;
    }
    printf("%.3f\n", best * 1e9);
    return 0;
}
"""

CORE_FROM_C = r"""
#include "ring.h"
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#define N 256
#define B 256
static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + t.tv_nsec * 1e-9; }
/* the batch round trip of bench/ring.py, with the calls made from C */
int main(int argc, char **argv)
{
    long iters = argc > 1 ? atol(argv[1]) : 20000;
    static uint8_t ram[1 << 16], bufs[B * 64];
    struct ring_region regs[2] = {{0, sizeof ram, ram}, {0x10000, sizeof bufs, bufs}};
    struct ring_mem mem = {regs, 2};
    /* place_rings("split", 256, 0): descriptors, available ring, used ring */
    struct ring_cfg cfg = {N, 0, 0, 0, 0, 0, 16 * N, (16 * N + 6 + 2 * N + 3) & ~3u};
    ring_queue *drv, *dev;
    if (ring_queue_new(&mem, &cfg, 0, 0, 0, &drv) || ring_queue_new(&mem, &cfg, 1, 0, 0, &dev))
        return 1;
    static struct ring_add ch[B]; static struct ring_seg sg[B];
    static struct ring_popped pc[B]; static struct ring_seg ps[N]; static struct ring_used u[B];
    for (int k = 0; k < B; k++) {
        ch[k].nseg = 1; ch[k].token = k;
        sg[k].addr = 0x10000 + 64ull * k; sg[k].len = 64; sg[k].flags = 1;
    }
    double best = 1e30;
    for (int rep = 0; rep < 6; rep++) {
        double t0 = now();
        for (long i = 0; i < iters; i++) {
            if (ring_add(drv, ch, B, sg, B) != (B << 1 | 1) || ring_pop(dev, pc, B, ps, N) != B ||
                ring_push(dev, pc, B, 1, 0) < 0 || ring_collect(drv, u, B) != B)
                return 1;
        }
        double dt = (now() - t0) / ((double)iters * B);
        if (rep && dt < best)
            best = dt;
    }
    printf("%.3f\n", best * 1e9);
    return 0;
}
"""


def plain_c_ns(iters: int) -> float:
    with tempfile.TemporaryDirectory() as d:
        src = os.path.join(d, "plain.c")
        exe = os.path.join(d, "plain")
        with open(src, "w") as f:
            f.write(PLAIN_C)
        subprocess.run(["gcc", "-O2", "-o", exe, src], check=True)
        out = subprocess.run([exe, str(iters)], check=True, capture_output=True, text=True)
        return float(out.stdout)


def core_from_c_ns(iters: int) -> float:
    from device_ref.ring import _build
    ring_dir = _build.HERE
    flags = _build.COMPILE_ARGS
    with tempfile.TemporaryDirectory() as d:
        src = os.path.join(d, "core.c")
        exe = os.path.join(d, "core")
        with open(src, "w") as f:
            f.write(CORE_FROM_C)
        subprocess.run(["gcc", *flags, f"-I{ring_dir}", "-o", exe, src, str(ring_dir / "ring.c")], check=True)
        out = subprocess.run([exe, str(iters)], check=True, capture_output=True, text=True)
        return float(out.stdout)


def setup(backend: str, layout: str = "split"):
    mem = GuestMemory()
    mem.add_region(0, bytearray(1 << 16))
    mem.add_region(0x10000, bytearray(BATCH * BUF_LEN))
    cfg = place_rings(layout, SIZE, 0)
    return DriverQueue(mem, cfg, backend=backend), DeviceQueue(mem, cfg, backend=backend)


def best_of(fn, reps: int) -> float:
    best = float("inf")
    for _ in range(reps):
        best = min(best, fn())
    return best


def batch_ns(backend: str, iters: int, reps: int, layout: str = "split") -> float:
    drv, dev = setup(backend, layout)
    chains = ChainBatch(BATCH, BATCH)
    for k in range(BATCH):
        chains.append([], [(0x10000 + BUF_LEN * k, BUF_LEN)], k)
    popped = PopBatch(BATCH, SIZE)
    used = UsedBatch(BATCH)
    add, pop, push, collect = drv.add_batch, dev.pop_batch, dev.push_batch, drv.collect_batch

    def once() -> float:
        t0 = time.perf_counter()
        for _ in range(iters):
            add(chains)
            pop(popped)
            push(popped, fill=True)
            collect(used)
        dt = time.perf_counter() - t0
        assert used.count == BATCH and popped.count == BATCH
        return dt / (iters * BATCH) * 1e9
    once()
    return best_of(once, reps)


def per_call_ns(backend: str, n: int, reps: int) -> float:
    drv, dev = setup(backend)
    inn = [(0x10000, BUF_LEN)]

    def once() -> float:
        t0 = time.perf_counter()
        for k in range(n):
            drv.add((), inn, k)
            c = dev.pop()
            dev.push(c.id, BUF_LEN)
            drv.collect()
        return (time.perf_counter() - t0) / n * 1e9
    once()
    return best_of(once, reps)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer iterations (smoke run)")
    args = ap.parse_args(argv)
    if not c_available():
        print("error: the C ring core is not built (run .venv/bin/pip install -e .)", file=sys.stderr)
        return 2
    scale = 0.1 if args.quick else 1.0
    rounds = 3 if args.quick else 7
    print(f"machine: {machine()}")
    # other processes share the CPU: alternate the fast measurements so all
    # see the same machine, and compare within each round
    plains, c_batches, cores_c = [], [], []
    for _ in range(rounds):
        plains.append(plain_c_ns(int(100000 * scale)))
        c_batches.append(batch_ns("c", int(2000 * scale), 3))
        cores_c.append(core_from_c_ns(int(20000 * scale)))
    plain, c_batch, core_c = (statistics.median(v) for v in (plains, c_batches, cores_c))
    ratios = [c / p for c, p in zip(c_batches, plains)]
    c_call = per_call_ns("c", int(20000 * scale), 3)
    py_batch = batch_ns("python", max(1, int(20 * scale)), 3)
    py_call = per_call_ns("python", int(5000 * scale), 3)
    c_packed = batch_ns("c", int(2000 * scale), 3, "packed")
    py_packed = batch_ns("python", max(1, int(20 * scale)), 3, "packed")
    print(f"split ring, {SIZE} entries, batches of {BATCH} one-segment buffers; ns per round trip")
    print(f"(C figures: median (range) of {rounds} interleaved rounds, each the best of 3)")
    print(f"  plain C loop (no Python, no checks)  {show_spread(plains, '{:.1f}'):>22}")
    print(f"  C core, batch API                    {show_spread(c_batches, '{:.1f}'):>22}")
    print(f"  C core, batch calls made from C      {show_spread(cores_c, '{:.1f}'):>22}")
    print(f"  C core, one call per operation       {c_call:10.1f}")
    print(f"  Python backend, batch API            {py_batch:10.1f}")
    print(f"  Python backend, one call per op      {py_call:10.1f}")
    print(f"packed ring, same workload: C batch {c_packed:.1f}, Python batch {py_packed:.1f}")
    print(f"C batch / plain C:        {show_spread(ratios)}x")
    print(f"  of which the four Python calls per batch: {c_batch - core_c:.1f} ns per round trip")
    print(f"Python batch / C batch:   {py_batch / c_batch:6.1f}x")
    print(f"Python per call / C batch:{py_call / c_batch:6.1f}x")
    print(f"C per call / C batch:     {c_call / c_batch:6.1f}x")
    print(f"machine after: {machine()}")
    ratio = statistics.median(ratios)
    print(target("C batch / plain C loop", ratio, "<= 1.5x", ratio <= 1.5, "{:.2f}x"))
    print(target("Python twin batch / C batch", py_batch / c_batch, ">= 50x",
                 py_batch / c_batch >= 50, "{:.0f}x"))
    print(target("packed: Python twin batch / C batch", py_packed / c_packed, ">= 50x",
                 py_packed / c_packed >= 50, "{:.0f}x"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
