"""Hostile inputs at 1x and 4x: each tool must stay linear (issue 19, items 12,
13 and 16). Prints the time of each size and their ratio from one run; linear
scaling gives about 4, the target is at most 6 (quadratic gives 16).

    .venv/bin/python bench/hostile_scaling.py [--scale 1.0]

Cases:
  check-features  `specc check` on N features that all collide (N diagnostics)
  docs-refs       RST + HTML for one module with N @feature() references
  audit-line      `specc audit` on a tree whose content.tex gains one line of
                  N bytes full of unclosed groups (\\ref{a ... \\item[ ...)
  check-prose     `specc check` on one prose block of N characters
"""
from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from specc.audit import audit                   # noqa: E402
from specc.emit.html import site_pages          # noqa: E402
from specc.emit.site import render_page         # noqa: E402
from specc.pipeline import check_files          # noqa: E402
from specc.upstream.tree import load_tree       # noqa: E402

TARGET = 6.0
HEADER = 'module m {\n  kind baseline\n  base "virtio-v1.4-cs01"\n}\n'
PARENT = "Basic Facilities of a Virtio Device"
AUDIT_TREE = ROOT / "tests" / "fixtures" / "audit-tree-clean"


def check_features(tmp: Path, n: int) -> None:
    src = tmp / "f.vspec"
    src.write_text(HEADER + "".join(f'feature VIRTIO_NET_F_X{i} {{\n bit 0\n scope net\n "x"\n}}\n'
                                    for i in range(n)), encoding="utf-8")
    result = check_files([str(src)], use_registry=False)
    result.render()


def docs_refs(tmp: Path, n: int) -> None:
    # prose blocks of 1,000 references each: one block may hold 256 KiB
    para = " ".join("@feature(VIRTIO_F_VERSION_1)" for _ in range(1000))
    body = "\n".join(f'"""{para}"""' for _ in range(n // 1000))
    src = tmp / "r.vspec"
    src.write_text(HEADER + f'section "S" in "{PARENT}" {{\n{body}\n}}\n', encoding="utf-8")
    result = check_files([str(src)], use_registry=False)
    assert result.ok, result.render()[:300]
    for page in site_pages(result.modules):
        render_page(page)


def audit_line(tmp: Path, n: int) -> None:
    root = tmp / "tree"
    if root.exists():
        shutil.rmtree(root)
    shutil.copytree(AUDIT_TREE, root)
    pattern = "\\ref{a \\item[ x "
    with open(root / "content.tex", "a", encoding="utf-8") as f:
        f.write("\n" + pattern * (n // len(pattern)) + "\n")
    audit(load_tree(root))


def check_prose(tmp: Path, n: int) -> None:
    words = " ".join(f"w{i % 997}" for i in range(n // 4))[:n]
    src = tmp / "p.vspec"
    src.write_text(HEADER + f'section "S" in "{PARENT}" {{\n"""{words}"""\n}}\n', encoding="utf-8")
    check_files([str(src)], use_registry=False)


CASES = {
    "check-features": (check_features, 2_000),
    "docs-refs": (docs_refs, 20_000),
    "audit-line": (audit_line, 1_000_000),
    "check-prose": (check_prose, 60_000),
}


def timed(fn, tmp: Path, n: int) -> float:
    start = time.perf_counter()
    fn(tmp, n)
    return time.perf_counter() - start


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scale", type=float, default=1.0, help="multiply every base size")
    args = ap.parse_args()
    worst = 0.0
    print(f"{'case':16} {'1x size':>10} {'1x s':>8} {'4x s':>8} {'ratio':>6}")
    with tempfile.TemporaryDirectory(prefix="hostile-bench-") as d:
        tmp = Path(d)
        for name, (fn, base) in CASES.items():
            n = int(base * args.scale)
            fn(tmp, n // 10)                       # warm up: grammar, docutils, imports
            small = timed(fn, tmp, n)
            large = timed(fn, tmp, 4 * n)
            ratio = large / small if small else float("inf")
            worst = max(worst, ratio)
            print(f"{name:16} {n:>10} {small:8.2f} {large:8.2f} {ratio:6.1f}")
    print(f"worst ratio {worst:.1f} (target at most {TARGET:g}; linear is 4, quadratic 16)")
    return 0 if worst <= TARGET else 1


if __name__ == "__main__":
    sys.exit(main())
