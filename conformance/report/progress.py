"""Progress while a suite runs: a bar on a terminal (tqdm), a line per
module otherwise; ``-q`` silences it, ``-v`` adds a line per FAIL or WEDGED.

tqdm draws the bar: it is small, has no dependencies of its own, is widely
kept, and handles terminal width, rate and remaining time, which a
hand-made bar would have to redo.
"""
from __future__ import annotations

import sys
import time
from collections import Counter
from typing import Any, TextIO

from conformance.verdicts import BAD, TestResult, Verdict


def _counts(c: Counter) -> str:
    return ", ".join(f"{c[v]} {v.value}" for v in Verdict if c.get(v))


class Progress:
    """Called by ``run_suite`` after each test: ``progress(done, total, result)``."""

    def __init__(self, stream: TextIO = sys.stderr, verbosity: int = 0,
                 live: bool | None = None) -> None:
        self.stream = stream
        self.verbosity = verbosity
        self.live = stream.isatty() if live is None else live
        self.bar: Any = None                # a tqdm bar while a layout runs
        self.module: str | None = None
        self.layout = ""
        self.counts: Counter = Counter()
        self.started = time.monotonic()
        self.bad = 0

    def __call__(self, done: int, total: int, result: TestResult) -> None:
        if result.verdict in BAD:
            self.bad += 1
        if self.verbosity < 0:
            return
        if self.live:
            self._bar(done, total, result)
        else:
            self._lines(done, total, result)
        if self.verbosity > 0 and result.verdict in BAD:
            self._say(f"{result.verdict.value} {result.layout} {result.key}: {result.reason}")

    def _say(self, text: str) -> None:
        if self.bar is not None:
            self.bar.write(text, file=self.stream)
        else:
            self.stream.write(text + "\n")
            self.stream.flush()

    def _bar(self, done: int, total: int, result: TestResult) -> None:
        if self.bar is None:
            # imported here: only a terminal needs it, and a setup error should
            # not wait for it (third-party, not a project module)
            from tqdm import tqdm
            self.bar = tqdm(total=total, file=self.stream, unit="test", leave=False,
                            dynamic_ncols=True, desc=result.layout)
        self.bar.set_postfix_str(f"{result.module}" + (f", {self.bad} bad" if self.bad else ""),
                                 refresh=False)
        self.bar.update(1)
        if done == total:
            self.bar.close()
            self.bar = None
            self.bad = 0

    def _lines(self, done: int, total: int, result: TestResult) -> None:
        key = (result.layout, result.module)
        if self.module is not None and key != (self.layout, self.module):
            self._flush()
        if self.module is None:
            self.layout, self.module = key
        self.counts[result.verdict] += 1
        if done == total:
            self._flush()

    def _flush(self) -> None:
        n = sum(self.counts.values())
        self.stream.write(f"{self.layout} {self.module}: {n} tests, {_counts(self.counts)} "
                          f"({time.monotonic() - self.started:.1f} s)\n")
        self.stream.flush()
        self.module = None
        self.counts = Counter()
        self.started = time.monotonic()     # the next module's time starts here
