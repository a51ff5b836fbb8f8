"""The JSON report: machine-readable, also read by ``specc docs --report``.

Stable fields (documented in docs/conformance.md): ``format``, ``version``,
``summary``, ``requirements`` (requirement id -> ``verdict`` and details),
``results`` (one per test and layout), ``coverage``.
"""
from __future__ import annotations

import json

from conformance.report import REPORT_FORMAT, REPORT_VERSION, Report


def to_dict(report: Report) -> dict:
    cov = report.coverage
    reqs = {}
    for rid, sc in sorted(cov.statements.items()):
        r = sc.requirement
        v = sc.verdict
        reqs[rid] = {
            "verdict": v.value if v is not None else None,
            "status": sc.status,
            "keyword": r.keyword,
            "role": r.role,
            "label": r.label,
            "clause": r.conformance_clause,
            "module": r.module,
            "testable": r.testable,
            "untestableReason": r.untestable_reason,
            "critical": any(x.evidence.critical for x in sc.results
                            if x.verdict.value in ("FAIL", "WEDGED")),
            "tests": [{"checkId": x.check_id, "layout": x.layout, "verdict": x.verdict.value}
                      for x in sc.results],
        }
    ef = report.expect_fail
    return {
        "format": REPORT_FORMAT,
        "version": REPORT_VERSION,
        "device": report.runs[0].adapter if report.runs else "",
        "layouts": [run.layout for run in report.runs],
        "seconds": round(report.seconds, 3),
        "vectors": [{"path": f.path, "module": f.module, "schemaVersion": f.schema_version,
                     "revision": f.revision} for f in report.suite.files],
        "summary": {
            "verdicts": dict(sorted(report.counts().items())),
            "critical": len(report.critical()),
            "unexpectedFailures": len(report.unexpected_bad()),
            "exitStatus": report.exit_status,
            "byKeyword": cov.by_keyword(),
        },
        "requirements": reqs,
        "results": [r.to_json() for r in report.results],
        "coverage": {
            "missingMust": cov.missing_must,
            "orphans": [{"test": k, "requirement": rid} for k, rid in cov.orphans],
            "outdated": [{"test": k, "reason": why} for k, why in cov.outdated],
            "untestable": [{"requirement": rid, "reason": why} for rid, why in cov.untestable],
            "byClause": {clause: {label: [sc.requirement.id for sc in items]
                                  for label, items in blocks.items()}
                         for clause, blocks in cov.by_clause().items()},
        },
        "expectFail": None if ef is None else {
            "listed": sorted(ef.listed), "stillFailing": ef.expected,
            "nowPassing": ef.now_passing, "notRun": ef.not_run},
        "deviceLog": [run.device_log[-4000:] for run in report.runs if run.device_log],
        "meta": report.meta,
    }


def render(report: Report) -> str:
    return json.dumps(to_dict(report), indent=2, sort_keys=False) + "\n"
