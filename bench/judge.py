"""What every benchmark prints beside its figures: the machine and its
load, a median with its spread, and each target of issue 23 with met or
missed. Imported by the bench scripts (their folder is on sys.path)."""
from __future__ import annotations

import os
import platform
import statistics
import time


def machine() -> str:
    """One line: when, which CPU, how many cores, and the load averages."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next((ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")), cpu)
    except OSError:
        pass
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    return (f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; {cpu}; {os.cpu_count()} cores; "
            f"load {load}")


def spread(values: list[float]) -> tuple[float, float, float]:
    """(median, min, max)."""
    return statistics.median(values), min(values), max(values)


def show_spread(values: list[float], fmt: str = "{:.2f}") -> str:
    med, lo, hi = spread(values)
    return f"{fmt.format(med)} ({fmt.format(lo)}-{fmt.format(hi)})"


def target(label: str, value: float, goal: str, ok: bool, fmt: str = "{:.2f}") -> str:
    """A target line: the measured value, the goal, met or MISSED."""
    return f"  target {label}: {fmt.format(value)} (goal {goal}) {'met' if ok else 'MISSED'}"
