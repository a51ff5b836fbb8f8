"""Build a (patched) spec tree with XeLaTeX the way upstream's makepdf.sh does,
but strictly: stop on the first TeX error and fail on any `LaTeX Warning`
(undefined or multiply defined labels, references that changed) in the log
of the last run.
"""
from __future__ import annotations

import re
import shutil
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

RUNS = 3


class BuildError(Exception):
    def __init__(self, message: str, log: Path | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.log = log


@dataclass
class BuildResult:
    pdf: Path
    log: Path
    seconds: float
    runs: int
    pages: int | None = None


@dataclass(frozen=True)
class Pass:
    """One XeLaTeX run, as reported while a build goes on."""
    n: int
    of: int                        # at most this many runs
    seconds: float
    warnings: int                  # LaTeX warnings in this run's log


def _jobname(tree: Path) -> str:
    rev = tree / "REVISION"
    if rev.is_file():
        name = rev.read_text(encoding="utf-8").strip()
        if re.fullmatch(r"[A-Za-z0-9._-]+", name):
            return name
    return "virtio"


def _setup_generated(tree: Path, job: str, timeout: float) -> None:
    """makepdf.sh writes setup-generated.tex first (version and date macros)."""
    script = tree / "make-setup-generated.sh"
    if not script.is_file() or (tree / "setup-generated.tex").is_file():
        return
    proc = subprocess.run(["sh", str(script), job], cwd=tree, capture_output=True, text=True,
                          timeout=timeout)
    if proc.returncode != 0:
        raise BuildError(f"make-setup-generated.sh failed: {(proc.stderr or proc.stdout).strip()}")


def _logical_lines(log_text: str) -> list[str]:
    """TeX wraps its log at 79 characters; join the wrapped pieces back."""
    out: list[str] = []
    wrapped = False
    for line in log_text.splitlines():
        if wrapped and out:
            out[-1] += line
        else:
            out.append(line)
        wrapped = len(line) == 79
    return out


def _first_problem(log_text: str) -> str | None:
    lines = _logical_lines(log_text)
    for line in lines:
        if line.startswith("!"):
            return line.strip()
    for line in lines:
        if "LaTeX Warning" in line or "LaTeX Error" in line:
            return line.strip()
    return None


def _pages(log_text: str) -> int | None:
    m = re.search(r"Output written on .*?\((\d+) pages?", log_text, re.S)
    return int(m.group(1)) if m else None


def build_tree(tree: str | Path, runs: int = RUNS, timeout: float = 900.0,
               progress: Callable[[Pass], None] | None = None, min_runs: int = 2) -> BuildResult:
    """Run XeLaTeX on virtio.tex in `tree` (which it writes into) until a run
    leaves no LaTeX warning, at least `min_runs` and at most `runs` times.

    Two runs at least: the second reads only what the first wrote, so a
    label that an aux file left by an earlier build still holds cannot hide
    a reference that is undefined now. A clean last log means the run read
    the labels it wrote (LaTeX warns when they changed). `progress` hears
    of every pass."""
    tree = Path(tree)
    xelatex = shutil.which("xelatex")
    if xelatex is None:
        raise BuildError("xelatex not found: install texlive-xetex, texlive-latex-extra, "
                         "texlive-fonts-recommended and fonts-liberation")
    job = _jobname(tree)
    _setup_generated(tree, job, timeout)
    log = tree / f"{job}.log"
    start = time.perf_counter()
    warnings: list[str] = []
    n = 0
    for n in range(1, runs + 1):
        t0 = time.perf_counter()
        try:
            proc = subprocess.run([xelatex, "-interaction=nonstopmode", "-halt-on-error",
                                   f"-jobname={job}", "virtio.tex"], cwd=tree,
                                  capture_output=True, text=True, timeout=timeout,
                                  errors="replace")
        except subprocess.TimeoutExpired:
            raise BuildError(f"xelatex run {n} took more than {timeout:.0f} s", log) from None
        if proc.returncode != 0:
            text = log.read_text(encoding="utf-8", errors="replace") if log.exists() else proc.stdout
            problem = _first_problem(text) or f"exit status {proc.returncode}"
            raise BuildError(f"xelatex run {n} failed: {problem}", log)
        text = log.read_text(encoding="utf-8", errors="replace")
        warnings = [ln.strip() for ln in _logical_lines(text) if "LaTeX Warning" in ln]
        if progress is not None:
            progress(Pass(n, runs, time.perf_counter() - t0, len(warnings)))
        if n >= min_runs and not warnings:
            break
    if warnings:
        raise BuildError(f"{len(warnings)} LaTeX warning(s) after {n} runs, first: "
                         f"{warnings[0]}", log)
    pdf = tree / f"{job}.pdf"
    if not pdf.is_file():
        raise BuildError("xelatex wrote no PDF", log)
    return BuildResult(pdf=pdf, log=log, seconds=time.perf_counter() - start, runs=n,
                       pages=_pages(text))
