"""Ring core round-trip benchmark.

One round trip = driver adds a buffer, device pops it, device pushes it
used, driver collects it.  Measured in one run, on a split ring of 256
entries with batches of 256 one-segment buffers:

  plain C loop   the same round trip in C with no Python, no bounds checks
                 and no validation (compiled here with gcc -O2): the limit
  C batch API    DriverQueue.add_batch / DeviceQueue.pop_batch / push_batch /
                 DriverQueue.collect_batch on the C core
  C per call     add / pop / push / collect, one Python call per operation
  Python batch   the batch API on the pure-Python backend
  Python per call

Targets: C batch <= 2x the plain C loop, and >= 30x faster than Python.
Usage: .venv/bin/python bench/ring.py [--quick]
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time

from device_ref.ring import (ChainBatch, DeviceQueue, DriverQueue, GuestMemory, PopBatch, UsedBatch,
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

struct desc { uint64_t addr; uint32_t len; uint16_t flags; uint16_t next; };
struct used_elem { uint32_t id; uint32_t len; };
struct seg { uint64_t addr; uint32_t len; uint32_t flags; };
#define N 256
#define B 256

static struct desc desc[N];
static struct { uint16_t flags, idx, ring[N], used_event; } avail;
static struct { uint16_t flags, idx; struct used_elem ring[N]; uint16_t avail_event; } used;
static uint16_t free_fifo[N]; static uint32_t free_head, free_count;
static uint64_t token[N]; static uint32_t wlen[N];
static uint16_t avail_shadow, last_used, last_avail, used_shadow;
static struct seg out_segs[B]; static uint32_t out_ids[B], out_wlen[B];
static uint64_t got_token[B]; static uint32_t got_len[B];
static volatile uint64_t sink;

static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + t.tv_nsec * 1e-9; }

static void round_trip(void)
{
    /* driver: add B one-segment writable buffers, publish */
    for (uint32_t k = 0; k < B; k++) {
        uint16_t d = free_fifo[free_head]; free_head = (free_head + 1) & (N - 1); free_count--;
        desc[d].addr = 0x10000 + 64ull * k; desc[d].len = 64; desc[d].flags = 2; desc[d].next = 0;
        token[d] = k; wlen[d] = 64;
        avail.ring[avail_shadow & (N - 1)] = d; avail_shadow++;
    }
    __atomic_thread_fence(__ATOMIC_RELEASE);
    avail.idx = avail_shadow;
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    sink += !(used.flags & 1);
    /* device: pop everything available */
    uint16_t ai = avail.idx; uint32_t c = 0;
    __atomic_thread_fence(__ATOMIC_ACQUIRE);
    while (last_avail != ai) {
        uint16_t h = avail.ring[last_avail & (N - 1)], i = h; uint32_t w = 0;
        for (;;) {
            struct desc dd = desc[i];
            out_segs[c].addr = dd.addr; out_segs[c].len = dd.len; out_segs[c].flags = dd.flags & 2 ? 1 : 0;
            if (dd.flags & 2) w += dd.len;
            if (!(dd.flags & 1)) break;
            i = dd.next;
        }
        out_ids[c] = h; out_wlen[c] = w; c++; last_avail++;
    }
    /* device: push them all used with their writable length, publish */
    for (uint32_t k = 0; k < c; k++) {
        struct used_elem *e = &used.ring[(uint16_t)(used_shadow + k) & (N - 1)];
        e->id = out_ids[k]; e->len = out_wlen[k];
    }
    used_shadow += c;
    __atomic_thread_fence(__ATOMIC_RELEASE);
    used.idx = used_shadow;
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    sink += !(avail.flags & 1);
    /* driver: collect */
    uint16_t ui = used.idx; uint32_t g = 0;
    __atomic_thread_fence(__ATOMIC_ACQUIRE);
    while (last_used != ui) {
        struct used_elem e = used.ring[last_used & (N - 1)];
        got_token[g] = token[e.id]; got_len[g] = e.len; g++;
        free_fifo[(free_head + free_count) & (N - 1)] = (uint16_t)e.id; free_count++;
        last_used++;
    }
    sink += got_token[B - 1] + got_len[0];
}

int main(int argc, char **argv)
{
    long iters = argc > 1 ? atol(argv[1]) : 200000;
    for (uint32_t i = 0; i < N; i++) free_fifo[i] = (uint16_t)i;
    free_count = N;
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


def plain_c_ns(iters: int) -> float:
    with tempfile.TemporaryDirectory() as d:
        src = os.path.join(d, "plain.c")
        exe = os.path.join(d, "plain")
        with open(src, "w") as f:
            f.write(PLAIN_C)
        subprocess.run(["gcc", "-O2", "-o", exe, src], check=True)
        out = subprocess.run([exe, str(iters)], check=True, capture_output=True, text=True)
        return float(out.stdout)


def setup(backend: str):
    mem = GuestMemory()
    mem.add_region(0, bytearray(1 << 16))
    mem.add_region(0x10000, bytearray(BATCH * BUF_LEN))
    cfg = place_rings("split", SIZE, 0)
    return DriverQueue(mem, cfg, backend=backend), DeviceQueue(mem, cfg, backend=backend)


def best_of(fn, reps: int) -> float:
    best = float("inf")
    for _ in range(reps):
        best = min(best, fn())
    return best


def batch_ns(backend: str, iters: int, reps: int) -> float:
    drv, dev = setup(backend)
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
    reps = 3 if args.quick else 7
    plain = plain_c_ns(int(200000 * scale))
    c_batch = batch_ns("c", int(4000 * scale), reps)
    c_call = per_call_ns("c", int(20000 * scale), reps)
    py_batch = batch_ns("python", max(1, int(20 * scale)), reps)
    py_call = per_call_ns("python", int(5000 * scale), reps)
    print(f"split ring, {SIZE} entries, batches of {BATCH} one-segment buffers; ns per round trip")
    print(f"  plain C loop (no Python, no checks)  {plain:10.1f}")
    print(f"  C core, batch API                    {c_batch:10.1f}")
    print(f"  C core, one call per operation       {c_call:10.1f}")
    print(f"  Python backend, batch API            {py_batch:10.1f}")
    print(f"  Python backend, one call per op      {py_call:10.1f}")
    print(f"C batch / plain C:        {c_batch / plain:6.2f}x  (target <= 2)")
    print(f"Python batch / C batch:   {py_batch / c_batch:6.1f}x  (target >= 30)")
    print(f"Python per call / C batch:{py_call / c_batch:6.1f}x")
    print(f"C per call / C batch:     {c_call / c_batch:6.1f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
