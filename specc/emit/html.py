"""The HTML documentation site: an index of modules, one page per module,
verdicts from a conformance report beside each statement, optional charts.

Pages are the RST of `specc.emit.rst`, rendered by `specc.emit.site`.
"""
from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

from specc.emit.escape import rst_text
from specc.emit.rst import VERDICTS, ROLES, SiteIndex, Verdict, heading, list_table, module_rst
from specc.emit.site import Page, build_site
from specc.model import Module
from specc.upstream.tree import SpecTree

INDEX = "index"


class ReportError(ValueError):
    """A conformance report that cannot be read (one line)."""


def read_report(path: Path) -> dict[str, Verdict]:
    """Verdicts per requirement id from a conformance report (JSON).

    Accepted shapes (docs/emitters.md): ``{"results": [{"requirement": ID,
    "verdict": V}, ...]}`` (one entry per test, any extra fields), or
    ``{"requirements": {ID: {"verdict": V}}}``. Verdicts are PASS, FAIL,
    REJECT, WEDGED and SKIP."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ReportError(f"{path}: cannot read report: {exc.strerror}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ReportError(f"{path}: not a JSON report: {exc}") from None
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


def _verdict(v: object, path: Path, where: str) -> str:
    if not isinstance(v, str) or v.upper() not in VERDICTS:
        raise ReportError(f"{path}: {where}: verdict must be one of {', '.join(VERDICTS)}, not {v!r}")
    return v.upper()


def index_rst(modules: list[Module], verdicts: dict[str, Verdict] | None,
              charts: list[str]) -> str:
    title = "virtio-specc: specification modules"
    bar = "=" * len(title)
    out = [f"{bar}\n{title}\n{bar}\n", ROLES,
           "Each module is a change to the virtio specification (proposal) or a restatement "
           "of upstream rules the conformance suite tests (baseline).\n"]
    header = ["Module", "Kind", "Title", "Features", "Statements", "Checks", "Untestable"]
    if verdicts is not None:
        header.append("Verdicts")
    rows = []
    for m in modules:
        stmts = list(m.all_statements())
        row = [f"`{m.name} <{m.name}.html>`__", m.kind, rst_text(m.title or ""),
               str(len(m.features)), str(len(stmts)), str(sum(len(s.checks) for s in stmts)),
               str(sum(1 for s in stmts if s.untestable is not None))]
        if verdicts is not None:
            tally = Counter(verdicts[s.id].overall for s in stmts if s.id in verdicts)
            row.append(", ".join(f":verdict-{v.lower()}:`{v}` {tally[v]}" for v in VERDICTS
                                 if tally[v]) or "not run")
        rows.append(row)
    out.append(list_table(header, rows))
    if charts:
        out.append(heading("Benchmarks", 0))
        for c in charts:
            out.append(f".. image:: assets/{c}\n   :alt: {rst_text(c)}\n")
    return "\n".join(out)


STYLESHEET = """\
body { font-family: system-ui, sans-serif; max-width: 60rem; margin: 2rem auto; padding: 0 1rem;
       line-height: 1.45; color: #1d232b; }
h1, h2, h3, h4 { color: #1f3c68; }
table { border-collapse: collapse; margin: 1rem 0; }
th, td { border: 1px solid #c7ced8; padding: .3rem .5rem; vertical-align: top; }
th { background: #eef2f7; }
pre { background: #f5f7fa; padding: .6rem; overflow-x: auto; }
.statement { border-left: 4px solid #446caa; background: #fafbfd; padding: .2rem 1rem;
             margin: 1rem 0; }
.statement.device { border-left-color: #2e7d5b; }
.statement:target { outline: 2px solid #e0a100; }
.amend-del { text-decoration: line-through; background: #fde4e2; color: #8b1a1a; }
.amend-ins { text-decoration: underline; background: #dcf3df; color: #14532d; }
.rfc2119 { font-weight: bold; color: #a3261d; letter-spacing: .03em; }
[class^="verdict-"] { font-weight: bold; padding: 0 .35em; border-radius: .25em; color: #fff; }
.verdict-pass { background: #2e7d32; }
.verdict-fail { background: #c62828; }
.verdict-wedged { background: #6a1b9a; }
.verdict-reject { background: #00838f; }
.verdict-skip, .verdict-none { background: #757575; }
"""


def site_pages(modules: list[Module], verdicts: dict[str, Verdict] | None = None,
               charts: list[str] = (), tree: SpecTree | None = None) -> list[Page]:
    idx = SiteIndex.of(modules)
    names = [m.name for m in modules]
    if INDEX in names:
        raise ValueError(f"a module named '{INDEX}' would overwrite the site index")
    pages = [Page(INDEX, "index", index_rst(modules, verdicts, list(charts)))]
    pages += [Page(m.name, m.title or m.name, module_rst(m, idx, verdicts, INDEX, tree))
              for m in modules]
    return pages


def build_docs(modules: list[Module], out_dir: Path, report: Path | None = None,
               assets: Path | None = None, tree: SpecTree | None = None) -> list[Path]:
    """Write the site (amendments as diffs against `tree` when given); raise
    SiteError / ReportError on bad input."""
    verdicts = read_report(report) if report is not None else None
    svgs = sorted(assets.glob("*.svg")) if assets is not None else []
    pages = site_pages(modules, verdicts, [p.name for p in svgs], tree)
    return build_site(pages, out_dir, STYLESHEET, svgs)
