"""JUnit XML for CI systems: one testsuite per module and layout, one
testcase per test (classname: the requirement id)."""
from __future__ import annotations

import xml.etree.ElementTree as ET
from collections import OrderedDict

from conformance.report import Report
from conformance.verdicts import Verdict


def render(report: Report) -> str:
    root = ET.Element("testsuites", name="virtio conformance")
    suites: "OrderedDict[tuple[str, str], list]" = OrderedDict()
    for r in report.results:
        suites.setdefault((r.module, r.layout), []).append(r)
    totals = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
    for (module, layout), results in suites.items():
        s = ET.SubElement(root, "testsuite", name=f"{module}[{layout}]")
        n = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
        time_sum = 0.0
        for r in results:
            n["tests"] += 1
            time_sum += r.seconds
            tc = ET.SubElement(s, "testcase", classname=r.requirement,
                               name=f"{r.check_id}[{layout}]", time=f"{r.seconds:.3f}")
            ev = r.evidence
            detail = (f"requirement {r.requirement} ({r.keyword}), {r.label}\n"
                      f"step: {ev.step} ({ev.source})\nexpected: {ev.expected}\n"
                      f"observed: {ev.observed}")
            if r.verdict is Verdict.FAIL and not r.expected_failure:
                n["failures"] += 1
                kind = "CRITICAL" if ev.critical else "FAIL"
                ET.SubElement(tc, "failure", message=r.reason, type=kind).text = detail
            elif r.verdict is Verdict.WEDGED and not r.expected_failure:
                n["errors"] += 1
                ET.SubElement(tc, "error", message=r.reason, type="WEDGED").text = detail
            elif r.verdict is Verdict.SKIP or r.expected_failure:
                n["skipped"] += 1
                msg = f"expected failure: {r.reason}" if r.expected_failure else r.reason
                ET.SubElement(tc, "skipped", message=msg)
            else:
                ET.SubElement(tc, "system-out").text = f"{r.verdict.value}: {r.reason}"
        for k, v in n.items():
            s.set(k, str(v))
            totals[k] += v
        s.set("time", f"{time_sum:.3f}")
    for k, v in totals.items():
        root.set(k, str(v))
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, "unicode") + "\n"
