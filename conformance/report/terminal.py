"""The terminal view: a progress bar while running, then the final tables.
Colour only when writing to a terminal (and NO_COLOR is unset)."""
from __future__ import annotations

import os
import re
from collections import Counter
from typing import TextIO

from conformance.report import Report
from conformance.verdicts import TestResult, Verdict

COLOURS = {"PASS": "32", "REJECT": "36", "FAIL": "31;1", "WEDGED": "35;1", "SKIP": "33",
           "OUTDATED": "34", "CRITICAL": "41;97;1"}


def use_colour(stream: TextIO) -> bool:
    return stream.isatty() and not os.environ.get("NO_COLOR") and os.environ.get("TERM") != "dumb"


def paint(text: str, key: str, colour: bool) -> str:
    code = COLOURS.get(key)
    return f"\x1b[{code}m{text}\x1b[0m" if colour and code else text


def _table(rows: list[list[str]], header: list[str]) -> list[str]:
    widths = [max(len(_plain(r[i])) for r in rows + [header]) for i in range(len(header))]
    out = ["  ".join(h.ljust(w) for h, w in zip(header, widths)).rstrip()]
    for r in rows:
        out.append("  ".join(c + " " * (w - len(_plain(c))) for c, w in zip(r, widths)).rstrip())
    return out


def _plain(text: str) -> str:
    return re.sub(r"\x1b\[[0-9;]*m", "", text)


def render(report: Report, colour: bool = False, verbose: bool = False) -> str:
    """The summary and verdict counts first; the per-clause listing and the
    untestable statements only when ``verbose``."""
    lines: list[str] = []
    counts = report.counts()
    layouts = ", ".join(run.layout for run in report.runs)
    device = report.runs[0].adapter if report.runs else "?"
    status = report.exit_status
    result = paint("OK", "PASS", colour) if status == 0 else paint("FAILED", "FAIL", colour)
    lines.append(f"conformance: device {device}, layout {layouts}: "
                 f"{len(report.results)} tests in {report.seconds:.2f} s: {result}")
    outdated = sum(1 for r in report.results if r.outdated)
    lines.append("verdicts: " + "  ".join(
        paint(f"{v.value} {counts.get(v.value, 0) - (outdated if v is Verdict.SKIP else 0)}",
              v.value, colour) for v in Verdict)
        + (f"  {paint(f'OUTDATED {outdated}', 'OUTDATED', colour)}" if outdated else ""))
    crit = report.critical()
    if crit:
        lines.append(paint(f"CRITICAL: {len(crit)} failure(s) touched memory outside the "
                           f"SWIOTLB region or released unauthenticated data", "CRITICAL", colour))
    bad = [r for r in report.results if r.verdict in (Verdict.FAIL, Verdict.WEDGED)]
    if bad:
        lines.append("")
        lines.append("problems:")
        rows = []
        for r in bad:
            tag = r.verdict.value + ("!" if r.evidence.critical else "") + \
                (" (expected)" if r.expected_failure else "")
            rows.append([paint(tag, "CRITICAL" if r.evidence.critical else r.verdict.value,
                               colour), r.layout, f"{r.requirement} ({r.keyword})",
                         r.check_id.split("/", 1)[-1], r.reason])
        lines += ["  " + x for x in _table(rows, ["VERDICT", "LAYOUT", "REQUIREMENT", "CHECK",
                                                  "EVIDENCE"])]
    skips = Counter(r.reason for r in report.results
                    if r.verdict is Verdict.SKIP and not r.outdated)
    if skips:
        lines.append("")
        lines.append("skipped, by reason:")
        for why, n in skips.most_common():
            lines.append(f"  {n:4}  {why}")
    cov = report.coverage
    clauses = cov.by_clause() if verbose else {}
    if clauses:
        lines.append("")
        lines.append("requirements by conformance clause:")
    for clause, blocks in clauses.items():
        lines.append(f"  {clause}")
        for label, items in blocks.items():
            lines.append(f"    {label}")
            for sc in items:
                v = sc.verdict
                shown = v.value if v is not None and sc.status in ("exercised", "outdated") \
                    else sc.status
                key = v.value if v is not None else ""
                n = len([x for x in sc.results if x.verdict not in (Verdict.SKIP,)])
                lines.append(f"      {paint(f'{shown:13}', key, colour)} "
                             f"{sc.requirement.keyword:10} {sc.requirement.id}"
                             + (f"  ({n} run)" if n else ""))
    lines.append("")
    lines.append("summary by keyword:")
    kw = cov.by_keyword()
    cols = ["statements", "exercised", "PASS", "REJECT", "FAIL", "WEDGED", "not exercised",
            "no vectors", "untestable"]
    rows = [[k] + [str(kw.get(k, {}).get(c, 0)) for c in cols] for k in ("MUST", "SHOULD", "MAY")]
    lines += ["  " + x for x in _table(rows, ["KEYWORD"] + [c.upper() for c in cols])]
    if cov.missing_must:
        lines.append("")
        lines.append(f"MUST / MUST NOT statements with no vector ({len(cov.missing_must)}):")
        lines += [f"  {rid}" for rid in cov.missing_must]
    if cov.orphans:
        lines.append("")
        lines.append(f"vectors whose requirement no longer exists ({len(cov.orphans)}):")
        lines += [f"  {k} -> {rid}" for k, rid in cov.orphans]
    if cov.outdated:
        lines.append("")
        lines.append(f"outdated vectors, not run ({len(cov.outdated)}):")
        lines += [f"  {k}: {why}" for k, why in cov.outdated]
    if cov.untestable and verbose:
        lines.append("")
        lines.append(f"untestable statements ({len(cov.untestable)}):")
        lines += [f"  {rid}: {' '.join(why.split())}" for rid, why in cov.untestable]
    ef = report.expect_fail
    if ef is not None:
        lines.append("")
        lines.append(f"expected failures: {len(ef.expected)} still failing, "
                     f"{len(ef.not_run)} not run")
        for rid in ef.now_passing:
            lines.append(paint(f"  NOW PASSING: {rid} is listed as a known failure but "
                               f"passed: remove it from the list", "FAIL", colour))
    if not verbose:
        lines.append("")
        lines.append(f"(-v lists every requirement by conformance clause and the "
                     f"{len(cov.untestable)} untestable statements)")
    lines.append("")
    lines.append("result: " + (paint("OK", "PASS", colour) if status == 0 else
                               paint("FAILED", "FAIL", colour)))
    return "\n".join(lines) + "\n"
