"""``conformance mutants``: run the suite against each fault-injection
variant of the reference devices and show which requirement caught it."""
from __future__ import annotations

import argparse
import json
import sys
import time

from device_ref.cli_base import CliError
from conformance.adapters.base import AdapterOptions
from conformance.adapters.ref import RefAdapter
from conformance.commands.run import _vectors, add_verbosity, layouts, write
from conformance.mutants import MUTANTS, Mutant
from conformance.runner import RunOptions, run_suite
from conformance.vectors import VectorError, load_suite
from conformance.verdicts import BAD

HELP = "Run the suite against broken variants of the reference device; each must be caught."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--vectors", action="append", metavar="DIR",
                        help="vector files or directories (default out/vectors)")
    parser.add_argument("--only", nargs="+", metavar="NAME", default=(),
                        help="run only these variants")
    parser.add_argument("--layout", default="split,packed",
                        help="ring layouts to run, comma-separated (default split,packed)")
    parser.add_argument("--step-timeout", type=float, default=0.3, metavar="SECONDS",
                        help="longest a step may wait (default 0.3: the device is in-process)")
    parser.add_argument("--format", choices=("terminal", "json"), default="terminal")
    parser.add_argument("-o", "--output", metavar="FILE", help="write the table here")
    parser.add_argument("--list", action="store_true", help="list the variants and exit")
    add_verbosity(parser)


def run(args: argparse.Namespace) -> int:
    if args.list:
        for m in MUTANTS:
            print(f"{m.name:30} breaks {m.breaks}: {m.doc}")
        return 0
    chosen = list(MUTANTS)
    if args.only:
        known = {m.name: m for m in MUTANTS}
        unknown = [n for n in args.only if n not in known]
        if unknown:
            raise CliError(f"unknown variant {unknown[0]!r} (see --list)")
        chosen = [known[n] for n in args.only]
    try:
        suite = load_suite(_vectors(args))
    except VectorError as exc:
        raise CliError(str(exc)) from None
    lays = layouts(args.layout)
    opts = AdapterOptions(timeout=args.step_timeout)
    rows = []

    def judge(label: str, make) -> dict:
        start = time.monotonic()
        bad = []
        for layout in lays:
            run_opts = RunOptions(layout=layout, step_timeout=args.step_timeout)
            res = run_suite(suite, make(), run_opts)
            bad += [r for r in res.results if r.verdict in BAD]
        return {"bad": bad, "seconds": time.monotonic() - start}

    def told(row: dict) -> None:
        """Each variant as it finishes (the whole table comes at the end)."""
        if args.verbosity < 0:
            return
        n = len(rows)
        what = ("clean" if row["caught"] else row["verdict"]) if not row["breaks"] else \
            (f"caught ({row['verdict']} on {row['breaks']})" if row["caught"] else
             f"ESCAPED: nothing on {row['breaks']}")
        sys.stderr.write(f"[{n}/{len(chosen) + 1}] {row['variant']}: {what} "
                         f"({row['seconds']:.1f} s)\n")
        sys.stderr.flush()

    ref = judge("ref", lambda: RefAdapter(opts))
    rows.append({"variant": "(unmodified)", "breaks": "", "caught": not ref["bad"],
                 "verdict": "clean" if not ref["bad"] else f"{len(ref['bad'])} FAIL/WEDGED",
                 "by": sorted({r.requirement for r in ref["bad"]}),
                 "evidence": ref["bad"][0].reason if ref["bad"] else "",
                 "seconds": round(ref["seconds"], 2)})
    told(rows[-1])
    for m in chosen:
        out = judge(m.name, lambda m=m: m.adapter(opts))
        hits = [r for r in out["bad"] if r.requirement == m.breaks]
        rows.append({"variant": m.name, "breaks": m.breaks, "caught": bool(hits),
                     "verdict": hits[0].verdict.value if hits else "ESCAPED",
                     "by": sorted({r.requirement for r in out["bad"]}),
                     "evidence": (f"{hits[0].check_id}: {hits[0].reason}" if hits else
                                  "no FAIL or WEDGED on the requirement it breaks"),
                     "seconds": round(out["seconds"], 2)})
        told(rows[-1])
    ok = all(r["caught"] for r in rows)
    if args.format == "json":
        text = json.dumps({"variants": rows, "allCaught": ok}, indent=2) + "\n"
    else:
        text = _table(rows, ok)
    if args.output:
        write(args.output, text)
    sys.stdout.write(text)
    return 0 if ok else 1


def _table(rows: list[dict], ok: bool) -> str:
    head = ["VARIANT", "BREAKS", "CAUGHT", "ALSO FAILED", "EVIDENCE"]
    body = []
    for r in rows:
        others = [x for x in r["by"] if x != r["breaks"]]
        body.append([r["variant"], r["breaks"] or "-",
                     ("yes, " + r["verdict"]) if r["caught"] and r["breaks"] else
                     (r["verdict"] if not r["breaks"] else "NO"),
                     str(len(others)), r["evidence"][:100]])
    widths = [max(len(x[i]) for x in body + [head]) for i in range(len(head))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in [head] + body]
    caught = sum(1 for r in rows[1:] if r["caught"])
    lines.append("")
    lines.append(f"{caught} of {len(rows) - 1} variants caught; unmodified device "
                 f"{'clean' if rows[0]['caught'] else 'NOT clean'}: {'OK' if ok else 'FAILED'}")
    return "\n".join(lines) + "\n"
