"""Reports and coverage: JSON fields other tools read, JUnit, HTML, the
terminal table, expected-failure lists, outdated and orphaned vectors, and
the CLI's exit statuses."""
from __future__ import annotations

import json
import subprocess
import sys
import xml.etree.ElementTree as ET

import pytest

from conformance import expect_fail
from conformance.select_adapter import parse_adapter
from conformance.mutants import by_name
from conformance.report import build, html, json_report, junit, terminal
from conformance.runner import RunOptions, run_suite
from conformance.vectors import Requirement, load_suite
from conformance.verdicts import Verdict

ONLY = ("swiotlb.dev.no-access-outside", "swiotlb.dev.inside-works", "base.blk.dev.basic-requests")


@pytest.fixture(scope="module")
def broken(suite):
    run = run_suite(suite, by_name("writes-outside-region").adapter(),
                    RunOptions(layout="split", step_timeout=0.2, only=ONLY))
    return build(suite, [run], docs_url="https://docs.example/virtio")


def test_json_report_keeps_a_verdict_per_requirement_and_marks_critical(broken):
    doc = json.loads(json_report.render(broken))
    assert doc["format"] == "virtio-conformance-report" and doc["version"] == 1
    req = doc["requirements"]["swiotlb.dev.no-access-outside"]
    assert req["verdict"] == "FAIL" and req["critical"] is True
    assert req["clause"] == "Device Conformance" and req["keyword"] == "MUST NOT"
    assert doc["requirements"]["swiotlb.dev.inside-works"]["verdict"] == "PASS"
    # a statement no test of this run touched is listed without a verdict
    assert doc["requirements"]["swiotlb.mmio.dev.needs-region"]["status"] == "untestable"
    # the shape `specc docs --report` reads: results with requirement and verdict
    verdicts = {"PASS", "FAIL", "REJECT", "WEDGED", "SKIP"}
    assert all(r["verdict"] in verdicts and r["requirement"] for r in doc["results"])
    fail = next(r for r in doc["results"] if r["verdict"] == "FAIL")
    assert fail["evidence"]["step"] and fail["evidence"]["observed"] and fail["evidence"]["critical"]
    assert doc["summary"]["exitStatus"] == 1 and doc["summary"]["critical"] >= 1


def test_specc_docs_reads_the_json_report(broken, tmp_path):
    from specc.emit.html import read_report
    p = tmp_path / "report.json"
    p.write_text(json_report.render(broken))
    verdicts = read_report(p)
    assert "swiotlb.dev.no-access-outside" in verdicts


def test_junit_has_failures_with_evidence(broken):
    root = ET.fromstring(junit.render(broken))
    failures = list(root.iter("failure"))
    assert failures and all(f.get("type") in ("FAIL", "CRITICAL") for f in failures)
    assert any(f.get("type") == "CRITICAL" for f in failures)
    assert int(root.get("tests")) == len(broken.results)
    assert "observed:" in failures[0].text


def test_html_links_requirements_to_the_docs_site(broken):
    page = html.render(broken)
    assert page.lstrip().startswith("<!DOCTYPE html>")
    assert 'href="https://docs.example/virtio/swiotlb.html#swiotlb-dev-no-access-outside"' in page
    assert "Device Conformance" in page and "CRITICAL" in page


def test_terminal_view_groups_by_clause_and_has_no_colour_when_asked(broken):
    text = terminal.render(broken, colour=False, verbose=True)
    assert "\x1b[" not in text
    assert "requirements by conformance clause:" in text and "summary by keyword:" in text
    assert "CRITICAL" in text and "result: FAILED" in text
    assert "untestable statements" in text and "swiotlb.mmio.dev.needs-region" in text


def test_terminal_view_opens_with_the_result_and_counts_and_lists_details_only_with_v(broken):
    lines = terminal.render(broken, colour=False).splitlines()
    assert lines[0].startswith("conformance: device") and lines[0].endswith("FAILED")
    assert lines[1].startswith("verdicts: PASS ")
    text = "\n".join(lines)
    assert "untestable statements (" not in text
    assert "requirements by conformance clause:" not in text
    assert "-v lists every requirement" in text
    assert len(lines) < len(terminal.render(broken, colour=False, verbose=True).splitlines())
    coloured = terminal.render(broken, colour=True)
    assert "\x1b[31;1mFAIL" in coloured or "\x1b[41;97;1m" in coloured


def test_missing_vectors_for_must_statements_are_named(suite, broken):
    cov = broken.coverage
    for rid in cov.missing_must:
        r = cov.statements[rid].requirement
        assert r.keyword in ("MUST", "MUST NOT", "REQUIRED") and r.testable
        assert not cov.statements[rid].vectors
    by_kw = cov.by_keyword()
    assert by_kw["MUST"]["statements"] == sum(
        1 for sc in cov.statements.values() if sc.requirement.keyword in ("MUST", "MUST NOT"))


def test_outdated_and_orphaned_vectors(suite):
    reqs = dict(suite.requirements())
    changed = reqs["swiotlb.dev.inside-works"]
    current = {k: v for k, v in reqs.items() if k != "swiotlb.dev.reset-reoffer"}
    current["swiotlb.dev.inside-works"] = Requirement(**{**changed.__dict__,
                                                         "fingerprint": "0" * 16})
    run = run_suite(suite, parse_adapter("ref"),
                    RunOptions(layout="split", current=current,
                               only=("swiotlb.dev.inside-works", "swiotlb.dev.reset-reoffer")))
    assert all(r.outdated and r.verdict is Verdict.SKIP for r in run.results)
    assert all(r.reason.startswith("OUTDATED") for r in run.results)
    report = build(suite, [run], current=current)
    assert ("swiotlb:swiotlb.dev.reset-reoffer/reoffer", "swiotlb.dev.reset-reoffer") \
        in report.coverage.orphans
    assert any("changed since the vector was made" in why for _k, why in report.coverage.outdated)
    assert report.coverage.statements["swiotlb.dev.inside-works"].status == "outdated"


def test_expect_fail_list_gates_regressions_and_catches_new_passes(tmp_path, broken, suite):
    p = tmp_path / "known.txt"
    p.write_text("# known failures\nswiotlb.dev.no-access-outside  # writes outside\n"
                 "swiotlb.dev.inside-works\n")
    listed = expect_fail.read(p)
    outcome = expect_fail.apply(listed, broken.results)
    assert outcome.expected == ["swiotlb.dev.no-access-outside"]
    assert outcome.now_passing == ["swiotlb.dev.inside-works"]
    report = build(suite, broken.runs, expect_fail=outcome)
    assert report.exit_status == 1
    assert "NOW PASSING: swiotlb.dev.inside-works" in terminal.render(report)
    p.write_text("not an id!\n")
    with pytest.raises(expect_fail.ExpectFailError, match=r"known.txt:1: 'not an id!'"):
        expect_fail.read(p)


def _cli(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "conformance.cli", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=300)


def test_cli_exit_status_and_formats(vectors_dir, tmp_path):
    out = _cli("run", "--device", "ref", "--vectors", str(vectors_dir), "--only",
               "swiotlb.dev.inside-works", "--format", "junit", "-o", str(tmp_path / "j.xml"),
               "--json", str(tmp_path / "r.json"))
    assert out.returncode == 0, out.stderr
    assert ET.parse(tmp_path / "j.xml").getroot().get("failures") == "0"
    assert json.loads((tmp_path / "r.json").read_text())["summary"]["exitStatus"] == 0
    bad = _cli("run", "--device", "mutant:writes-outside-region", "--vectors", str(vectors_dir),
               "--only", "swiotlb.dev.no-access-outside", "--layout", "split",
               "--step-timeout", "0.2")
    assert bad.returncode == 1 and "CRITICAL" in bad.stdout


@pytest.mark.parametrize("args, message", [
    (["--device", "nowhere"], "unknown device adapter 'nowhere'"),
    (["--device", "vhost-user:"], "vhost-user needs a socket path"),
    (["--device", "spawn:true"], "needs {socket}"),
    (["--device", "ref", "--layout", "ring"], "--layout takes split, packed"),
    (["--device", "ref", "--only", "no.such.req"], "matches no test"),
])
def test_cli_usage_errors_are_one_line_exit_2(vectors_dir, args, message):
    out = _cli("run", "--vectors", str(vectors_dir), *args)
    assert out.returncode == 2
    assert message in out.stderr and len(out.stderr.strip().splitlines()) == 1
    assert "Traceback" not in out.stderr


def test_cli_refuses_an_unknown_schema_version(vectors_dir, tmp_path):
    doc = json.loads((vectors_dir / "swiotlb.json").read_text())
    doc["schemaVersion"] = "3.1"
    (tmp_path / "v.json").write_text(json.dumps(doc))
    out = _cli("run", "--device", "ref", "--vectors", str(tmp_path / "v.json"))
    assert out.returncode == 2 and "unsupported vector schema version '3.1'" in out.stderr


def test_cli_without_vectors_says_how_to_make_them(tmp_path):
    out = _cli("run", "--device", "ref", cwd=tmp_path)
    assert out.returncode == 2 and "specc vectors" in out.stderr


def test_suite_loads_the_same_from_a_single_file(vectors_dir):
    one = load_suite(vectors_dir / "swiotlb.json")
    assert [f.module for f in one.files] == ["swiotlb"]


def test_a_vector_naming_an_old_id_follows_the_rename(suite):
    reqs = dict(suite.requirements())
    old = reqs.pop("swiotlb.dev.inside-works")
    current = dict(reqs)
    current["swiotlb.dev.works-inside"] = Requirement(**{**old.__dict__,
                                                         "id": "swiotlb.dev.works-inside",
                                                         "aliases": ("swiotlb.dev.inside-works",)})
    run = run_suite(suite, parse_adapter("ref"),
                    RunOptions(layout="split", current=current,
                               only=("swiotlb.dev.inside-works",)))
    assert run.results and all(not r.outdated for r in run.results)
    report = build(suite, [run], current=current)
    assert not report.coverage.orphans
    assert report.coverage.statements["swiotlb.dev.works-inside"].status == "exercised"


def test_html_with_a_docs_site_takes_its_look_and_links_back(broken):
    page = html.render(broken)
    assert '<link rel="stylesheet" href="https://docs.example/virtio/style.css">' in page
    assert 'href="https://docs.example/virtio/index.html"' in page
    assert 'href="https://docs.example/virtio/coverage.html"' in page
    assert "<style>" not in page                    # the site's stylesheet, not its own
