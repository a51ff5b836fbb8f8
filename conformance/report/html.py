"""An HTML implementation report built with docutils: results grouped by
upstream conformance clause, each requirement linked to the docs site.

With ``--docs-url`` the page takes the docs site's stylesheet and a bar of
links back into the site (overview, coverage, this device's page among the
site's reports), so it reads as part of the site; without one it carries a
small style of its own. The docs site itself (``specc docs --report``)
renders the same JSON report as one of its pages."""
from __future__ import annotations

from html import escape

from docutils.nodes import make_id

from conformance.report import Report
from conformance.verdicts import Verdict

STYLE = """
<style>
body { font-family: sans-serif; max-width: 72em; margin: 1em auto; }
table { border-collapse: collapse; } td, th { border: 1px solid #ccc; padding: .2em .5em; }
.verdict-pass { color: #2e7d32; font-weight: bold; } .verdict-fail { color: #c62828; font-weight: bold; }
.verdict-wedged { color: #6a1b9a; font-weight: bold; } .verdict-reject { color: #00838f; font-weight: bold; }
.verdict-skip { color: #9e6a00; } .critical { background: #c62828; color: #fff; font-weight: bold; }
</style>
"""


def _esc(text: str) -> str:
    """Text safe inside RST inline markup and table cells."""
    out = " ".join(str(text).split())
    for ch in "\\`*_|[]<>":
        out = out.replace(ch, "\\" + ch)
    return out or ".."


def _link(rid: str, module: str, base: str) -> str:
    if not base:
        return f"``{rid}``"
    return f"`{rid} <{base.rstrip('/')}/{module}.html#{make_id(rid)}>`__"


def _verdict(v: str) -> str:
    return f":verdict-{v.lower()}:`{v}`"


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    out = [".. list-table::", "   :header-rows: 1", ""]
    for row in [header] + rows:
        out.append(f"   * - {row[0]}")
        out += [f"     - {c}" for c in row[1:]]
    out.append("")
    return out


def to_rst(report: Report) -> str:
    cov = report.coverage
    counts = report.counts()
    lines = []
    for v in Verdict:
        lines.append(f".. role:: verdict-{v.value.lower()}")
    lines.append(".. role:: critical")
    lines += ["", "Virtio conformance report", "=" * 25, ""]
    device = report.runs[0].adapter if report.runs else "?"
    lines.append(f"Device ``{device}``, layouts "
                 f"{', '.join(run.layout for run in report.runs)}: {len(report.results)} tests "
                 f"in {report.seconds:.2f} s. Vector files: "
                 + ", ".join(f"``{f.module}`` ({f.schema_version})" for f in report.suite.files)
                 + ".")
    lines.append("")
    lines += _table(["Verdict", "Tests"], [[_verdict(v.value), str(counts.get(v.value, 0))]
                                           for v in Verdict])
    crit = report.critical()
    if crit:
        lines += [f":critical:`CRITICAL: {len(crit)} failure(s) touched memory outside the "
                  f"SWIOTLB region or released unauthenticated data`", ""]
    lines += ["Summary by keyword", "-" * 18, ""]
    kw = cov.by_keyword()
    cols = ["statements", "exercised", "PASS", "REJECT", "FAIL", "WEDGED", "no vectors",
            "untestable"]
    lines += _table(["Keyword"] + cols, [[k] + [str(kw.get(k, {}).get(c, 0)) for c in cols]
                                         for k in ("MUST", "SHOULD", "MAY")])
    lines += ["Results by conformance clause", "-" * 29, ""]
    for clause, blocks in cov.by_clause().items():
        lines += [_esc(clause), "~" * len(_esc(clause)), ""]
        rows = []
        for label, items in blocks.items():
            for sc in items:
                r = sc.requirement
                v = sc.verdict
                shown = _verdict(v.value) if v is not None and sc.status == "exercised" \
                    else _esc(sc.status)
                evidence = [x for x in sc.results if x.verdict in (Verdict.FAIL, Verdict.WEDGED)]
                note = _esc(evidence[0].reason) if evidence else (
                    _esc(r.untestable_reason) if not r.testable else "")
                if evidence and evidence[0].evidence.critical:
                    note = ":critical:`CRITICAL` " + note
                rows.append([_link(r.id, r.module, report.docs_url), r.keyword, _esc(label),
                             shown, note or ".."])
        lines += _table(["Requirement", "Keyword", "Normative block", "Verdict", "Evidence"],
                        rows)
    if cov.missing_must:
        lines += ["MUST statements without a vector", "-" * 31, ""]
        lines += [f"* {_link(rid, cov.statements[rid].requirement.module, report.docs_url)}"
                  for rid in cov.missing_must] + [""]
    if cov.orphans:
        lines += ["Vectors whose requirement no longer exists", "-" * 42, ""]
        lines += [f"* ``{k}`` names ``{rid}``" for k, rid in cov.orphans] + [""]
    if cov.outdated:
        lines += ["Outdated vectors (not run)", "-" * 26, ""]
        lines += [f"* ``{k}``: {_esc(why)}" for k, why in cov.outdated] + [""]
    return "\n".join(lines) + "\n"


def _site_bar(base: str) -> str:
    """Links back into the docs site, in the site's top-bar style."""
    b = escape(base.rstrip("/"), quote=True)
    return (f'<header class="topbar"><a class="brand" href="{b}/index.html">virtio-specc</a>'
            f'<a class="brand" href="{b}/coverage.html">Coverage</a></header>')


def render(report: Report) -> str:
    from docutils.core import publish_string   # the HTML writer: only when HTML is asked for
    html = publish_string(to_rst(report), writer="html5",
                          settings_overrides={"report_level": 5, "halt_level": 5,
                                              "embed_stylesheet": False,
                                              "stylesheet_path": "", "stylesheet": ""})
    text = html.decode("utf-8")
    if not report.docs_url:
        return text.replace("</head>", STYLE + "</head>", 1)
    css = escape(report.docs_url.rstrip("/") + "/style.css", quote=True)
    text = text.replace("</head>", f'<link rel="stylesheet" href="{css}">\n</head>', 1)
    return text.replace("<body>", "<body>\n" + _site_bar(report.docs_url), 1)
