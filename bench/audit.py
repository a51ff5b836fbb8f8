"""Time `specc audit` on a whole spec tree; the target is under 2 s.

Uses the real tree when VIRTIO_SPEC_TREE points at a checkout, otherwise a
synthetic tree of the same size (about 100 files, 1.2 MB of LaTeX, 300
normative blocks) generated into a temp dir. Prints the figures of one run:
read time, check time, total (best of N), and the ratio to the budget.

    .venv/bin/python bench/audit.py [--repeat N] [--tree PATH]
"""
from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

from specc.audit import audit
from specc.upstream.tree import load_tree

BUDGET_S = 2.0

FILLER = ("The device and the driver exchange buffers through virtqueues; this paragraph "
          "only adds bulk so the synthetic tree is as large as the real one. ")


def synthetic_tree(root: Path, devices: int = 45, sections: int = 12) -> None:
    """About the size and shape of v1.4-cs01: a chapter of device types, each
    with feature bits, sections, normative blocks and conformance clauses."""
    (root / "commands.tex").write_text(
        "\\newcommand{\\drivernormative}[3]{#1{Driver Requirements: #2}\\label{drivernormative:#3}}\n"
        "\\newcommand{\\devicenormative}[3]{#1{Device Requirements: #2}\\label{devicenormative:#3}}\n"
        "\\newcommand{\\conformance}[2]{#1{Clause: #2}}\n")
    drv_items, dev_items = [], []
    inputs = []
    for d in range(devices):
        name = f"Dev{d} Device"
        base = f"Device Types / {name}"
        parts = [f"\\section{{{name}}}\\label{{sec:{base}}}\n\n{FILLER * 3}\n",
                 f"\\subsection{{Feature bits}}\\label{{sec:{base} / Feature bits}}\n"
                 "\\begin{description}\n"]
        parts += [f"\\item[VIRTIO_DEV{d}_F_X{b} ({b})] Feature {b}.\n" for b in range(4)]
        parts.append("\\end{description}\n\n")
        for s in range(sections):
            path = f"{base} / Part {s}"
            parts.append(f"\\subsection{{Part {s}}}\\label{{sec:{path}}}\n\n"
                         + (FILLER * 7 + "The driver MAY note this. ") + "\n\n" + (FILLER * 7) + "\n\n"
                         + "\\begin{lstlisting}\nstruct x { le32 a; /* % not a comment */ };\n\\end{lstlisting}\n\n")
            if s % 3 == 0:
                parts.append(f"\\drivernormative{{\\subsubsection}}{{Part {s}}}{{{path}}}\n\n"
                             "The driver MUST do one thing and SHOULD do another.\n\n"
                             f"\\devicenormative{{\\subsubsection}}{{Part {s}}}{{{path}}}\n\n"
                             f"The device MUST NOT do it; see \\ref{{sec:{base}}}.\n\n")
                drv_items.append(f"\\item \\ref{{drivernormative:{path}}}\n")
                dev_items.append(f"\\item \\ref{{devicenormative:{path}}}\n")
        fname = f"device-types/dev{d}/description.tex"
        (root / fname).parent.mkdir(parents=True, exist_ok=True)
        (root / fname).write_text("".join(parts))
        inputs.append(f"\\input{{{fname}}}\n")
        conf = root / f"device-types/dev{d}/conformance.tex"
        conf.write_text(f"% clause files, as upstream has per device\n")
        inputs.append(f"\\input{{device-types/dev{d}/conformance.tex}}\n")
    content = ("\\chapter{Basic Facilities}\\label{sec:Basic Facilities}\n"
               "\\section{Feature Bits}\\label{sec:Basic Facilities / Feature Bits}\n"
               "\\begin{description}\n\\item[0 to 23 and 50 to 127] Feature bits for the specific device type\n"
               "\\item[24 to 43] Feature bits reserved for extensions to the queue and feature negotiation\n"
               "\\item[44 to 49, and 128 and above] Feature bits reserved for future extensions.\n"
               "\\end{description}\n\\chapter{Device Types}\\label{sec:Device Types}\n" + "".join(inputs))
    (root / "content.tex").write_text(content)
    (root / "conformance.tex").write_text(
        "\\chapter{Conformance}\\label{sec:Conformance}\n"
        "\\conformance{\\section}{Driver Conformance}\\label{sec:Conformance / Driver Conformance}\n"
        "\\begin{itemize}\n" + "".join(drv_items) + "\\end{itemize}\n"
        "\\conformance{\\section}{Device Conformance}\\label{sec:Conformance / Device Conformance}\n"
        "\\begin{itemize}\n" + "".join(dev_items) + "\\end{itemize}\n")
    (root / "virtio.tex").write_text("\\documentclass{report}\n\\input{commands.tex}\n\\begin{document}\n"
                                     "\\input{content.tex}\n\\input{conformance.tex}\n\\end{document}\n")


def measure(root: Path, repeat: int) -> None:
    reads, checks, totals = [], [], []
    for _ in range(repeat):
        t0 = time.perf_counter()
        tree = load_tree(root)
        t1 = time.perf_counter()
        findings = audit(tree)
        t2 = time.perf_counter()
        reads.append(t1 - t0)
        checks.append(t2 - t1)
        totals.append(t2 - t0)
    size = sum(len(s.text) for s in tree.sources.values())
    best = min(totals)
    print(f"tree: {root}")
    print(f"  files read: {len(tree.files)}, {size / 1e6:.2f} MB of LaTeX, "
          f"{len(tree.sections)} headings, {len(tree.blocks)} normative blocks, "
          f"{len(tree.keywords)} keywords, {len(findings)} findings")
    print(f"  read tree: best {min(reads) * 1000:.0f} ms, median {statistics.median(reads) * 1000:.0f} ms")
    print(f"  checks:    best {min(checks) * 1000:.0f} ms, median {statistics.median(checks) * 1000:.0f} ms")
    print(f"  total:     best {best * 1000:.0f} ms, median {statistics.median(totals) * 1000:.0f} ms "
          f"(of {repeat} runs)")
    print(f"  budget {BUDGET_S:.1f} s: {best / BUDGET_S:.3f} of the budget "
          f"({'OK' if best < BUDGET_S else 'OVER BUDGET'})")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--tree", help="tree to audit (default: $VIRTIO_SPEC_TREE, else synthetic)")
    args = ap.parse_args()
    path = args.tree or os.environ.get("VIRTIO_SPEC_TREE")
    if path:
        measure(Path(path), args.repeat)
    else:
        with tempfile.TemporaryDirectory(prefix="specc-bench-audit-") as tmp:
            synthetic_tree(Path(tmp))
            print("VIRTIO_SPEC_TREE not set: synthetic tree of the same size")
            measure(Path(tmp), args.repeat)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
