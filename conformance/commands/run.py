"""``conformance run``: run vectors against a device and report."""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from device_ref.cli_base import CliError

from conformance import expect_fail as ef
from conformance.adapters.base import AdapterError, AdapterOptions, parse_bounce
from conformance.select_adapter import parse_adapter
from conformance.outcomes import EngineError
from conformance.report import build, html, json_report, junit, terminal
from conformance.report.progress import Progress
from conformance.runner import RunOptions, run_suite
from conformance.vectors import VectorError, load_suite

HELP = "Run conformance vectors against a device (ref, vhost-user:PATH, spawn:COMMAND) and report."

FORMATS = ("terminal", "json", "junit", "html")
DEFAULT_VECTORS = "out/vectors"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--device", required=True, metavar="ADAPTER",
                        help="ref[:swiotlb=on|off] (in-process reference devices), "
                             "vhost-user:PATH (a back-end listening there), or spawn:COMMAND "
                             "(started per test group; {socket} is replaced by a socket path)")
    parser.add_argument("--vectors", action="append", metavar="DIR",
                        help=f"vector files or directories (default {DEFAULT_VECTORS}; "
                             f"make them with: specc vectors spec/*.vspec -o DIR)")
    parser.add_argument("--only", nargs="+", metavar="REQ", default=(),
                        help="run only these requirement ids (PREFIX* or PREFIX. for groups; "
                             "a check id also works)")
    parser.add_argument("--format", choices=FORMATS, default="terminal")
    parser.add_argument("-o", "--output", metavar="FILE", help="write the report here")
    parser.add_argument("--json", metavar="FILE", help="also write the JSON report here")
    parser.add_argument("--layout", default="split,packed",
                        help="ring layouts to run, comma-separated (default split,packed)")
    parser.add_argument("--step-timeout", type=float, default=2.0, metavar="SECONDS",
                        help="longest a step may wait for the device (default 2)")
    parser.add_argument("--device-type", metavar="TYPE",
                        help="device type behind vhost-user/spawn (blk, rng, fs; default blk)")
    parser.add_argument("--bounce", metavar="BASE:SIZE",
                        help="bounce region the back-end carries for VIRTIO_F_SWIOTLB "
                             "(default 0x100000000:8M, as device-ref serve)")
    parser.add_argument("--expect-fail", metavar="FILE",
                        help="known failures (requirement ids, one per line): they do not fail "
                             "the run, and one that starts passing does")
    parser.add_argument("--current", metavar="DIR",
                        help="vectors made from the current spec: tests whose statement "
                             "changed since are reported OUTDATED instead of run")
    add_verbosity(parser)
    parser.add_argument("--docs-url", default="", metavar="URL",
                        help="docs site the HTML report links requirements to")


def add_verbosity(parser: argparse.ArgumentParser) -> None:
    group = parser.add_mutually_exclusive_group()
    group.add_argument("-q", "--quiet", action="store_const", const=-1, dest="verbosity",
                       default=0, help="no progress while running")
    group.add_argument("-v", "--verbose", action="store_const", const=1, dest="verbosity",
                       help="a line per FAIL or WEDGED as it happens; the report lists every "
                            "requirement by clause and the untestable statements")


def _vectors(args) -> list[str]:
    if args.vectors:
        return args.vectors
    if os.path.isdir(DEFAULT_VECTORS):
        return [DEFAULT_VECTORS]
    raise CliError(f"no vectors: {DEFAULT_VECTORS} does not exist; pass --vectors DIR "
                   f"(make them with: specc vectors spec/*.vspec -o DIR)")


def make_adapter(spec: str, device_type: str | None, bounce: str | None, timeout: float):
    try:
        opts = AdapterOptions(device_type=device_type, timeout=timeout,
                              bounce=parse_bounce(bounce) if bounce else None)
        return parse_adapter(spec, opts)
    except AdapterError as exc:
        raise CliError(str(exc)) from None


def layouts(text: str) -> list[str]:
    out = [x.strip() for x in text.split(",") if x.strip()]
    bad = [x for x in out if x not in ("split", "packed")]
    if bad or not out:
        raise CliError(f"--layout takes split, packed or both (comma-separated), not {text!r}")
    return out


def execute(args) -> "object":
    """Load, run every layout, and build the report (shared with mutants)."""

    if args.step_timeout <= 0:
        raise CliError("--step-timeout must be positive")
    chosen = layouts(args.layout)
    first = make_adapter(args.device, args.device_type, args.bounce, args.step_timeout)
    try:
        first.preflight()       # a setup mistake is reported before anything is loaded
        suite = load_suite(_vectors(args))
        current = load_suite(args.current).requirements() if args.current else None
        listed = ef.read(args.expect_fail) if args.expect_fail else None
    except (AdapterError, VectorError, ef.ExpectFailError) as exc:
        _release(first)
        raise CliError(str(exc)) from None
    except BaseException:
        _release(first)
        raise
    runs = []
    for n, layout in enumerate(chosen):
        adapter = first if n == 0 else make_adapter(args.device, args.device_type, args.bounce,
                                                     args.step_timeout)
        opts = RunOptions(layout=layout, step_timeout=args.step_timeout,
                          only=tuple(args.only), current=current)
        try:
            runs.append(run_suite(suite, adapter, opts,
                                  Progress(sys.stderr, getattr(args, "verbosity", 0))))
        except (AdapterError, EngineError, VectorError) as exc:
            raise CliError(str(exc)) from None
    if args.only and not any(run.results for run in runs):
        raise CliError(f"--only {' '.join(args.only)} matches no test")
    outcome = ef.apply(listed, [r for run in runs for r in run.results]) if listed is not None \
        else None
    return build(suite, runs, current, outcome, args.docs_url,
                 meta={"command": "conformance run", "stepTimeout": args.step_timeout})


def _release(adapter) -> None:
    """Stop what an adapter started when the run ends before run_suite."""
    spare = adapter.take_spare(None)
    if spare is not None:
        spare.close()
    adapter.close()
    adapter.cleanup()


def render(report, fmt: str, colour: bool, verbose: bool = False) -> str:
    if fmt == "json":
        return json_report.render(report)
    if fmt == "junit":
        return junit.render(report)
    if fmt == "html":
        return html.render(report)
    return terminal.render(report, colour, verbose)


def write(path: str, text: str) -> None:
    try:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_text(text, encoding="utf-8")
    except OSError as exc:
        raise CliError(f"{path}: cannot write: {exc.strerror}") from None


def run(args: argparse.Namespace) -> int:

    report = execute(args)
    if args.json:
        write(args.json, json_report.render(report))
    if args.output:
        write(args.output, render(report, args.format, False, True))
        if args.format != "terminal":
            sys.stdout.write(terminal.render(report, terminal.use_colour(sys.stdout),
                                             args.verbosity > 0))
    else:
        sys.stdout.write(render(report, args.format, terminal.use_colour(sys.stdout),
                                args.verbosity > 0))
    return report.exit_status
