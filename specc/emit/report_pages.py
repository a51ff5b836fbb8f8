"""Conformance reports in the docs site: reading the JSON reports of
`conformance run`, each statement's verdicts per device, and one page per
report in the site's look, its rows linked to the statement cards.

A report is data someone else produced: every string from it is escaped,
and only the fields documented in docs/emitters.md are read.
"""
from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from specc.emit.escape import rst_text
from specc.emit.rst import (ROLES, VERDICTS, SiteIndex, Verdict, anchor, heading, link_text,
                             list_table)

REPORT_PAGE_PREFIX = "report-"
_SAFE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:/-]{0,200}$")


class ReportError(ValueError):
    """A conformance report that cannot be read (one line)."""


@dataclass(frozen=True)
class DeviceReport:
    """One report: the device it judged and what it said about each requirement."""
    page: str                        # the site page showing it (without .html)
    device: str
    source: str                      # the file, as named on the command line
    data: dict
    verdicts: dict[str, Verdict]

    @property
    def label(self) -> str:
        """The device's name, shortened for the navigation and the cards (a spawn
        command can be a paragraph long; its report page shows it whole)."""
        return self.device if len(self.device) <= 40 else self.device[:39] + "…"


def _load(path: Path) -> object:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ReportError(f"{path}: cannot read report: {exc.strerror}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ReportError(f"{path}: not a JSON report: {exc}") from None
    except RecursionError:
        raise ReportError(f"{path}: nests too deeply to be a conformance report") from None


def _is_report(data: object) -> bool:
    return isinstance(data, dict) and (isinstance(data.get("results"), list)
                                       or isinstance(data.get("requirements"), dict))


def verdicts_of(data: object, path: Path) -> dict[str, Verdict]:
    """Verdicts per requirement id from a report's JSON (shapes in docs/emitters.md)."""
    pairs: list[tuple[str, str]] = []
    if isinstance(data, dict) and isinstance(data.get("results"), list):
        for i, r in enumerate(data["results"]):
            if not isinstance(r, dict) or not isinstance(r.get("requirement"), str):
                raise ReportError(f"{path}: results[{i}] has no 'requirement' id")
            pairs.append((r["requirement"], _verdict(r.get("verdict"), path, f"results[{i}]")))
    elif isinstance(data, dict) and isinstance(data.get("requirements"), dict):
        for rid, r in data["requirements"].items():
            v = r.get("verdict") if isinstance(r, dict) else None
            if v is None:
                continue          # listed but not run (e.g. untestable)
            pairs.append((rid, _verdict(v, path, f"requirements[{rid!r}]")))
    else:
        raise ReportError(f"{path}: a report needs a 'results' list or a 'requirements' object")
    counts: dict[str, Counter] = {}
    for rid, v in pairs:
        counts.setdefault(rid, Counter())[v] += 1
    return {rid: Verdict(tuple((v, c[v]) for v in VERDICTS)) for rid, c in counts.items()}


def read_report(path: Path) -> dict[str, Verdict]:
    """Verdicts per requirement id from one conformance report file."""
    return verdicts_of(_load(path), path)


def _verdict(v: object, path: Path, where: str) -> str:
    if not isinstance(v, str) or v.upper() not in VERDICTS:
        raise ReportError(f"{path}: {where}: verdict must be one of {', '.join(VERDICTS)}, not {v!r}")
    return v.upper()


def _page_name(rel: str) -> str:
    stem = re.sub(r"[^A-Za-z0-9_.-]+", "-", rel.removesuffix(".json")).strip("-.") or "report"
    return (REPORT_PAGE_PREFIX + stem)[:120]


def read_reports(paths: list[Path]) -> list[DeviceReport]:
    """Every report in `paths` (files, or directories searched for JSON reports).

    A file named on its own must be a report; in a directory, JSON that is
    not a report is passed over. When two reports judged the same device,
    the one written last is its latest and the only one kept."""
    found: list[tuple[float, Path, str, object]] = []
    for p in paths:
        if p.is_dir():
            for f in sorted(p.rglob("*.json")):
                data = _load(f)
                if _is_report(data):
                    found.append((f.stat().st_mtime, f, f.relative_to(p).as_posix(), data))
        elif p.is_file():
            found.append((p.stat().st_mtime, p, p.name, _load(p)))
        else:
            raise ReportError(f"{p}: no such report file or directory")
    latest: dict[str, tuple[float, Path, str, object]] = {}
    for item in found:
        data = item[3]
        device = data.get("device") if isinstance(data, dict) else None
        key = device if isinstance(device, str) and device else item[2]
        if key not in latest or item[0] >= latest[key][0]:
            latest[key] = item
    out: list[DeviceReport] = []
    used: set[str] = set()
    for device, (_, path, rel, data) in sorted(latest.items()):
        page = _page_name(rel)
        while page in used:
            page += "-2"
        used.add(page)
        out.append(DeviceReport(page, device, str(path), data if isinstance(data, dict) else {},
                                verdicts_of(data, path)))
    return out


def merged_verdicts(reports: list[DeviceReport]) -> dict[str, Verdict] | None:
    """Each requirement's verdict counts over all reports, with its verdict on each device."""
    if not reports:
        return None
    if len(reports) == 1 and not reports[0].data.get("device"):
        return reports[0].verdicts             # a bare report: no device to name
    counts: dict[str, Counter] = {}
    devices: dict[str, list[tuple[str, str, str]]] = {}
    for rep in reports:
        for rid, v in rep.verdicts.items():
            c = counts.setdefault(rid, Counter())
            for name, n in v.counts:
                c[name] += n
            devices.setdefault(rid, []).append((rep.label, v.overall, rep.page))
    return {rid: Verdict(tuple((v, c[v]) for v in VERDICTS), tuple(devices[rid]))
            for rid, c in counts.items()}


def _badge(v: str) -> str:
    return f":verdict-{v.lower()}:`{v}`"


def _str(x: object) -> str:
    return x if isinstance(x, str) else ""


def _evidence(data: dict, rid: str) -> str:
    """The first FAIL or WEDGED result's reason for a requirement, if any."""
    for r in data.get("results") or []:
        if (isinstance(r, dict) and r.get("requirement") == rid
                and str(r.get("verdict", "")).upper() in ("FAIL", "WEDGED")):
            return _str(r.get("reason"))
    return ""


def _requirement_facts(data: dict, rid: str) -> dict:
    req = (data.get("requirements") or {}).get(rid)
    if isinstance(req, dict):
        return req
    for r in data.get("results") or []:
        if isinstance(r, dict) and r.get("requirement") == rid:
            return r
    return {}


def report_rst(rep: DeviceReport, idx: SiteIndex, coverage_labels: dict[str, str]) -> str:
    """The page of one report: summary, then each requirement with its verdict, its
    statement card and its upstream block (linked to the coverage page when listed there)."""
    data = rep.data
    title = rst_text(f"Conformance report: {rep.device}")
    bar = "=" * max(len(title), 4)
    out = [f"{bar}\n{title}\n{bar}\n", ROLES, ".. role:: critical\n"]
    layouts = [x for x in data.get("layouts") or [] if isinstance(x, str)]
    seconds = data.get("seconds")
    facts = [f"Device: {rst_text(rep.device)}", f"read from {rst_text(Path(rep.source).name)}"]
    if layouts:
        facts.append("ring layouts " + rst_text(", ".join(layouts)))
    n_tests = len(data.get("results") or [])
    facts.append(f"{n_tests} test results" + (f" in {seconds:.1f} s" if isinstance(seconds, (int, float))
                                             else ""))
    out.append("; ".join(facts) + ".\n")
    tally = Counter()
    for v in rep.verdicts.values():
        for name, n in v.counts:
            tally[name] += n
    out.append(list_table(["Verdict", "Tests"], [[_badge(v), str(tally[v])] for v in VERDICTS]))
    summary = data.get("summary") if isinstance(data.get("summary"), dict) else {}
    if summary.get("critical"):
        out.append(f":critical:`CRITICAL: {int(summary['critical'])} failure(s) touched memory "
                   "outside the bounce region or released unauthenticated data`\n")
    bad = [rid for rid in sorted(rep.verdicts) if rep.verdicts[rid].overall in ("FAIL", "WEDGED")]
    if bad:
        out.append(heading("Failures", 0))
        out.append(list_table(["Requirement", "Verdict", "Evidence"], [
            [f"`{link_text(rid)} <#{anchor(rid)}>`__" if _SAFE_ID.match(rid) else rst_text(rid),
             _badge(rep.verdicts[rid].overall), rst_text(_evidence(data, rid)) or "\\-"]
            for rid in bad]))
    out.append(heading("Requirements by conformance clause", 0))
    out.append("Grouped by the upstream conformance clause that lists them. Each requirement "
               "links to its statement card; its upstream block links to the coverage page "
               "where that page lists it.\n")
    by_clause: dict[str, list[str]] = {}
    for rid in sorted(rep.verdicts):
        facts_r = _requirement_facts(data, rid)
        clause = _str(facts_r.get("clause")) or "No conformance clause named"
        by_clause.setdefault(clause, []).append(rid)
    used_anchors: set[str] = set()
    for clause in sorted(by_clause):
        out.append(heading(clause, 1))
        rows = [_requirement_row(rep, rid, idx, coverage_labels, used_anchors)
                for rid in sorted(by_clause[clause],
                                  key=lambda r: (_str(_requirement_facts(data, r).get("label")), r))]
        out.append(list_table(["Requirement", "Statement", "Keyword", "Upstream block", "Verdict",
                               "Evidence"], rows))
    return "\n".join(out)



def _requirement_row(rep: DeviceReport, rid: str, idx: SiteIndex, coverage_labels: dict[str, str],
                     used_anchors: set[str]) -> list[str]:
    """One requirement: its id (the anchor the cards link to), its card, keyword,
    upstream block, verdict with counts, and the evidence of a failure."""
    facts = _requirement_facts(rep.data, rid)
    v = rep.verdicts[rid]
    a = anchor(rid)
    if _SAFE_ID.match(rid) and a and a not in used_anchors:
        used_anchors.add(a)
        cell = f"_`{rid}`"
    else:
        cell = rst_text(rid)
    card = idx.statements.get(rid)
    card_cell = (f"`statement card <{card[0]}.html#{anchor(rid)}>`__" if card
                 else "not in these modules")
    label = _str(facts.get("label"))
    block = rst_text(label) or "\\-"
    if label in coverage_labels:
        block = f"`{link_text(label)} <coverage.html#{coverage_labels[label]}>`__"
    counts = ", ".join(f"{name} {n}" for name, n in v.counts if n)
    why = _evidence(rep.data, rid)
    return [cell, card_cell, rst_text(_str(facts.get("keyword"))) or "\\-", block,
            f"{_badge(v.overall)} ({counts})", rst_text(why) if why else "\\-"]


def reports_index_rows(reports: list[DeviceReport]) -> list[list[str]]:
    """One row per report for the index: device (linked), verdict tally."""
    rows = []
    for rep in reports:
        tally = Counter()
        for v in rep.verdicts.values():
            tally[v.overall] += 1
        rows.append([f"`{link_text(rep.label)} <{rep.page}.html>`__",
                     ", ".join(f"{_badge(v)} {tally[v]}" for v in VERDICTS if tally[v])
                     or "nothing run"])
    return rows
