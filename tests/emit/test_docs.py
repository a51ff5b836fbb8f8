"""The HTML docs: clean docutils output, resolving links, anchors, verdicts."""
import json
import re
from pathlib import Path

import pytest
from docutils.nodes import make_id

from specc.emit.html import build_docs, read_report, ReportError
from specc.emit.site import Page, SiteError, render_page

from tests.emit.conftest import SWIOTLB, specc
from tests.emit.linkcheck import broken_links


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("docs")
    proc = specc("docs", str(SWIOTLB), "-o", str(out))
    assert proc.returncode == 0, proc.stderr
    return out


def test_site_has_an_index_and_a_page_per_module(site) -> None:
    assert sorted(p.name for p in site.glob("*.html")) == ["coverage.html", "index.html",
                                                          "swiotlb.html"]
    index = (site / "index.html").read_text()
    assert 'href="swiotlb.html"' in index
    assert (site / "style.css").exists()


def test_every_internal_link_resolves(site) -> None:
    assert broken_links(site) == []


def test_no_docutils_messages_in_the_pages(site) -> None:
    for page in site.glob("*.html"):
        text = page.read_text()
        assert "system-message" not in text and "problematic" not in text, page.name


def test_statements_have_stable_anchors_and_highlighted_keywords(site, swiotlb) -> None:
    html = (site / "swiotlb.html").read_text()
    for st in swiotlb.all_statements():
        for name in (st.id,) + st.aliases:
            # docutils' normalised id, and the id exactly as written
            assert f'id="{make_id(name)}"' in html, name
            assert f'id="{name}"' in html, name
    # each statement box shows its keyword in the rfc2119 class
    boxes = re.findall(r'<div class="statement (?:driver|device) docutils container"[^>]*>(.*?)</div>',
                       html, re.S)
    assert len(boxes) == len(list(swiotlb.all_statements()))
    for box, st in zip(boxes, swiotlb.all_statements()):
        assert f'<span class="rfc2119">{st.keyword}</span>' in box


def test_feature_references_link_to_the_feature_table(site) -> None:
    html = (site / "swiotlb.html").read_text()
    assert 'id="virtio-f-swiotlb"' in html
    assert 'href="#virtio-f-swiotlb"' in html


def test_report_verdicts_appear_beside_statements(tmp_path: Path, swiotlb) -> None:
    report = tmp_path / "report.json"
    report.write_text(json.dumps({"results": [
        {"requirement": "swiotlb.dev.no-access-outside", "verdict": "PASS", "tcId": 3},
        {"requirement": "swiotlb.dev.no-access-outside", "verdict": "FAIL", "tcId": 4},
        {"requirement": "swiotlb.rfb.dev.may-fail", "verdict": "REJECT"},
    ]}))
    out = tmp_path / "site"
    build_docs([swiotlb], out, report)
    html = (out / "swiotlb.html").read_text()
    box = html.split('id="swiotlb-dev-no-access-outside"', 1)[1].split("</div>", 1)[0]
    # one PASS and one FAIL: the statement's verdict is the worse one
    assert '<span class="verdict-fail">FAIL</span>' in box and "FAIL 1" in box and "PASS 1" in box
    box = html.split('id="swiotlb-rfb-dev-may-fail"', 1)[1].split("</div>", 1)[0]
    assert '<span class="verdict-reject">REJECT</span>' in box
    box = html.split('id="swiotlb-dev-reset-reoffer"', 1)[1].split("</div>", 1)[0]
    assert "not run" in box
    assert broken_links(out) == []


def test_report_of_the_conformance_runner_shape(tmp_path: Path) -> None:
    # conformance/report/json_report.py writes both a per-requirement table
    # (verdict null when not run) and one result per test; results win.
    report = tmp_path / "r.json"
    report.write_text(json.dumps({
        "format": "virtio-conformance-report", "version": "1.0",
        "requirements": {"a": {"verdict": "PASS"}, "b": {"verdict": None}},
        "results": [{"requirement": "a", "verdict": "PASS", "checkId": "a/x", "layout": "split"},
                    {"requirement": "a", "verdict": "SKIP", "checkId": "a/x", "layout": "packed"}],
    }))
    verdicts = read_report(report)
    assert set(verdicts) == {"a"}
    assert verdicts["a"].overall == "PASS" and dict(verdicts["a"].counts)["SKIP"] == 1
    only_table = tmp_path / "t.json"
    only_table.write_text(json.dumps({"requirements": {"a": {"verdict": "wedged"}, "b": {"verdict": None}}}))
    assert {k: v.overall for k, v in read_report(only_table).items()} == {"a": "WEDGED"}


@pytest.mark.parametrize("content, message", [
    ("{not json", "not a JSON report"),
    ('{"results": [{"verdict": "PASS"}]}', "no 'requirement'"),
    ('{"results": [{"requirement": "x", "verdict": "GREAT"}]}', "verdict must be one of"),
    ('[1, 2]', "needs a 'results' list"),
])
def test_bad_reports_are_one_line_errors(tmp_path: Path, content: str, message: str) -> None:
    report = tmp_path / "r.json"
    report.write_text(content)
    with pytest.raises(ReportError, match=re.escape(message)):
        read_report(report)
    proc = specc("docs", str(SWIOTLB), "-o", str(tmp_path / "o"), "--report", str(report))
    assert proc.returncode == 2
    assert len(proc.stderr.strip().splitlines()) == 1 and message in proc.stderr
    assert "Traceback" not in proc.stderr


def test_docutils_warnings_fail_the_page() -> None:
    with pytest.raises(SiteError, match=r"bad\.rst:\d+: \(ERROR/3\) Unknown target name"):
        render_page(Page("bad", "Bad", "Title\n=====\n\nSee `nowhere`_.\n"))
    with pytest.raises(SiteError, match="WARNING"):
        render_page(Page("bad", "Bad", "Title\n=====\n\n*unclosed emphasis\n"))


def test_rst_command_writes_pages_that_docutils_reads_cleanly(tmp_path: Path) -> None:
    proc = specc("rst", str(SWIOTLB), "-o", str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    text = (tmp_path / "swiotlb.rst").read_text()
    render_page(Page("swiotlb", "swiotlb", text))     # raises on any docutils message


def test_a_picture_without_data_is_copied_and_shown_on_the_benchmarks_page(tmp_path: Path) -> None:
    assets = tmp_path / "charts"
    assets.mkdir()
    (assets / "ring.svg").write_text('<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"/>')
    out = tmp_path / "site"
    proc = specc("docs", str(SWIOTLB), "-o", str(out), "--assets", str(assets))
    assert proc.returncode == 0, proc.stderr
    assert (out / "assets" / "ring.svg").exists()
    assert 'src="assets/ring.svg"' in (out / "benchmarks.html").read_text()
    assert 'href="benchmarks.html"' in (out / "index.html").read_text()
    assert broken_links(out) == []
