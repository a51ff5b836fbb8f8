"""The docs site as built by `specc docs`: navigation, contents, guides, coverage,
reports linked both ways with the statement cards, charts with their data, search
index, and nothing loaded from outside the site."""
from __future__ import annotations

import json
import re
from html import escape
from html.parser import HTMLParser
from pathlib import Path

import pytest
from docutils.nodes import make_id

from specc.audit.coverage import BlockCoverage, Coverage, Figures, StatementCoverage
from specc.emit.coverage_page import coverage_rst
from specc.emit.guides import Guide, guide_page
from specc.emit.rst import SiteIndex
from specc.emit.site import Page, render_page
from specc.emit.site_layout import TOC_MIN_ENTRIES
from specc.load import load
from tests.emit.linkcheck import broken_links

from tests.docs_site.conftest import ROOT, run
from tests.spec_trees import MINI
from tests.specc.test_citations import MODULE as CITING_MODULE

STATEMENT = "swiotlb.dev.no-access-outside"


class _Resources(HTMLParser):
    """What a page loads (scripts, stylesheets, images) and where it links."""
    def __init__(self) -> None:
        super().__init__()
        self.loads: list[str] = []
        self.links: list[str] = []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag in ("script", "img") and a.get("src"):
            self.loads.append(a["src"])
        elif tag == "link" and a.get("href"):
            self.loads.append(a["href"])
        elif tag == "a" and a.get("href"):
            self.links.append(a["href"])


def _resources(page: Path) -> _Resources:
    p = _Resources()
    p.feed(page.read_text(encoding="utf-8"))
    return p


def _pages(site: Path) -> list[Path]:
    return sorted(site.glob("*.html"))


def test_no_link_in_the_site_is_broken(built_site):
    assert broken_links(built_site) == []


def test_every_page_has_the_same_navigation_to_every_part(built_site):
    pages = _pages(built_site)
    names = {p.name for p in pages}
    for required in ("index.html", "coverage.html", "benchmarks.html", "swiotlb.html",
                     "virtio_blk.html", "guide-dsl.html", "guide-conformance.html",
                     "report-ref.html"):
        assert required in names, required
    for page in pages:
        html = page.read_text(encoding="utf-8")
        nav = html.split('<nav class="sidebar"', 1)[1].split("</nav>", 1)[0]
        linked = set(re.findall(r'href="([^"#]+)"', nav))
        assert linked == names, page.name          # every page, from every page
        assert f'href="{page.name}" aria-current="page"' in nav, page.name
        for group in ("Overview", "Proposals", "Baseline modules", "Guides",
                      "Conformance reports"):
            assert f">{group}</h2>" in nav, (page.name, group)


def test_nothing_is_loaded_from_outside_the_site(built_site):
    for page in _pages(built_site):
        for src in _resources(page).loads:
            assert not re.match(r"^[a-z]+:|^//", src), (page.name, src)
            assert (built_site / src).is_file(), (page.name, src)
    css = (built_site / "style.css").read_text()
    assert "@import" not in css and "url(" not in css and "@font-face" not in css
    assert "http" not in (built_site / "site.js").read_text()


def test_long_pages_have_contents_and_short_ones_do_not(built_site):
    page = (built_site / "swiotlb.html").read_text()
    toc = page.split('<nav class="toc"', 1)[1].split("</nav>", 1)[0]
    targets = re.findall(r'href="#([^"]+)"', toc)
    assert len(targets) >= TOC_MIN_ENTRIES
    assert all(f'id="{t}"' in page for t in targets)
    assert ">Bounce Buffer Memory</a>" in toc and ">Feature bits</a>" in toc
    assert '<nav class="toc"' not in (built_site / "benchmarks.html").read_text()


def test_stylesheet_styles_admonitions_wide_tables_and_print(built_site):
    css = (built_site / "style.css").read_text()
    assert ".admonition" in css and ".table-wrap { overflow-x: auto" in css
    assert "@media print" in css
    html = (built_site / "swiotlb.html").read_text()
    # every table sits in its scrolling box; the module's note is a docutils admonition
    assert html.count("<table") == html.count('<div class="table-wrap"><table')
    assert '<aside class="admonition note">' in html


def test_guides_are_pages_and_their_links_point_into_the_site(built_site):
    guides = sorted(p.stem for p in (ROOT / "docs").glob("*.md"))
    for stem in guides:
        html = (built_site / f"guide-{stem}.html").read_text()
        assert '<h1 class="title">' in html and "</main>" in html, stem
        for href in _resources(built_site / f"guide-{stem}.html").links:
            assert not href.endswith(".md") and ".md#" not in href, (stem, href)
    conf = (built_site / "guide-conformance.html").read_text()
    assert 'href="guide-check-actions.html"' in conf
    props = (built_site / "guide-proposals.html").read_text()
    assert 'href="swiotlb.html"' in props                # ../spec/swiotlb.vspec
    rdp = (built_site / "guide-restricted-dma-pool.html").read_text()
    assert '<span class="repo-path" title="in the repository: ../tests/linux_guest_arm64/' in rdp
    # GitHub's heading ids, so the guides' links to each other's sections still land
    assert 'id="adapters"' in conf


def test_a_guide_shows_raw_html_as_text_and_keeps_only_safe_links():
    g = Guide("x", "# X\n\n<script>alert(1)</script>\n\n[a](javascript:alert(1)) "
                   "[b](https://example.org/) [c](other.md#part) [d](../README.md)\n")
    page = guide_page(g, {"x", "other"}, set())
    assert "<script>" not in page.body_html and "&lt;script&gt;" in page.body_html
    assert "javascript:" not in re.sub(r">[^<]*<", "><", page.body_html)
    assert 'href="https://example.org/"' in page.body_html
    assert 'href="guide-other.html#part"' in page.body_html
    assert "README.md" not in re.findall(r'href="([^"]*)"', page.body_html)
    html = render_page(page)
    assert "<title>X · virtio-specc</title>" in html


def test_statement_cards_and_report_rows_link_to_each_other(built_site):
    card_page = (built_site / "swiotlb.html").read_text()
    anchor = make_id(STATEMENT)
    card = card_page.split(f'id="{anchor}"', 1)[1].split("</div>", 1)[0]
    assert f'href="report-ref.html#{anchor}"' in card
    report = (built_site / "report-ref.html").read_text()
    assert f'id="{anchor}"' in report
    row = report.split(f'id="{anchor}"', 1)[1].split("</tr>", 1)[0]
    assert f'href="swiotlb.html#{anchor}"' in row
    # the upstream block a statement adds to links to its row on the coverage page
    rfb = make_id("swiotlb.rfb.dev.may-fail")
    row = report.split(f'id="{rfb}"', 1)[1].split("</tr>", 1)[0]
    blocks = re.findall(r'href="coverage.html#([^"]+)"', row)
    coverage = (built_site / "coverage.html").read_text()
    assert blocks and all(f'id="{b}"' in coverage for b in blocks)
    assert "devicenormative:Reserved Feature Bits" in row
    # the verdict the report gives is the one shown, on the card and in the row
    verdicts = json.loads((built_site.parent / "reports" / "ref.json").read_text())
    shown = verdicts["requirements"][STATEMENT]["verdict"]
    badge = f'<span class="verdict-{shown.lower()}">{shown}</span>'
    # the row sits under the upstream conformance clause the report names for it
    clause = verdicts["requirements"][STATEMENT]["clause"]
    assert clause and f">{escape(clause)}</h3>" in report.split(f'id="{anchor}"', 1)[0]
    assert badge in card
    assert badge in report.split(f'id="{anchor}"', 1)[1].split("</tr>", 1)[0]


def test_coverage_page_lists_statements_with_their_status_and_upstream_blocks(built_site):
    html = (built_site / "coverage.html").read_text()
    assert 'href="swiotlb.html"' in html
    # an untestable statement with its reason, linked to its card
    assert "Untestable statements and why" in html
    loaded = load([str(p) for p in sorted((ROOT / "spec").glob("*.vspec"))])
    m, st = next((m, st) for m in loaded.modules for st in m.all_statements()
                 if st.untestable is not None and not st.checks)
    assert f'href="{m.name}.html#{make_id(st.id)}"' in html
    assert escape(" ".join(st.untestable.plain().split())[:40], quote=False) in html
    assert "Upstream blocks by chapter" in html
    assert "status-tested" in html and "status-uncovered" in html


def _coverage() -> Coverage:
    blk = "devicenormative:Device Types / Block Device / Device Operation"
    rows = (StatementCoverage("a.tested", "m", "restates", True, None),
            StatementCoverage("a.why", "m", "restates", False, "nothing to observe"),
            StatementCoverage("a.new", "p", "extends", False, None))
    return Coverage(chapters=[("Device Types", Figures())], totals=Figures(), missing=[],
                    untested=[], extended=[], unknown=[], tested_from="vectors",
                    blocks=[BlockCoverage(blk, "device-types/blk/description.tex", 10,
                                          "Device Types", 3, rows),
                            BlockCoverage("drivernormative:Device Types / Entropy Device / X",
                                          "x.tex", 5, "Device Types", 1, ())])


def test_coverage_groups_device_type_blocks_by_device_and_shows_every_status():
    text, labels = coverage_rst([], SiteIndex(), _coverage(), None)
    assert "Device Types: Block Device\n" in text and "Device Types: Entropy Device\n" in text
    assert "untestable`: nothing to observe" in text
    assert "a.new <" not in text and "(extends)" in text
    assert ":status-uncovered:`not yet covered`" in text
    assert set(labels) == {b.label for b in _coverage().blocks}


def test_the_chart_has_its_title_axes_sentence_and_data(built_site):
    html = (built_site / "benchmarks.html").read_text()
    chart = json.loads((ROOT / "docs" / "protection" / "protection.json").read_text())["chart"]
    fig = html.split('<figure class="chart"', 1)[1].split("</figure>", 1)[0]
    assert f"<title id=\"chart-protection-title\">{chart['title']}</title>" in fig
    assert chart["x"]["label"] in fig and chart["y"]["label"] + " (log scale)" in fig
    assert chart["summary"].split(";")[0] in fig
    table = fig.split('<div class="chart-data">', 1)[1]
    assert table.count("<tr>") == 1 + len(chart["x"]["categories"])
    assert f"{chart['series'][0]['values'][-1]:,.0f}" in table
    # the SVG font is at reading size: nothing smaller than 14px
    sizes = [int(x) for x in re.findall(r'font-size="(\d+)"', fig)]
    assert sizes and min(sizes) >= 14


def test_a_bad_chart_is_one_line_and_exit_2(tmp_path):
    (tmp_path / "b.json").write_text(json.dumps({"chart": {"title": "t", "summary": "s",
                                                            "x": {"label": "x", "categories": []},
                                                            "y": {"label": "y"}, "series": []}}))
    proc = run("specc.cli", "docs", str(ROOT / "spec" / "swiotlb.vspec"), "-o",
               str(tmp_path / "site"), "--assets", str(tmp_path))
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and "x.categories" in proc.stderr
    assert not (tmp_path / "site" / "index.html").exists()


def test_search_index_holds_every_statement_with_its_text(built_site):
    text = (built_site / "search-index.js").read_text()
    prefix = "window.SPECC_SEARCH = "
    assert text.startswith(prefix)
    entries = json.loads(text[len(prefix):].rstrip().rstrip(";"))
    statements = {e[1]: e for e in entries if e[0] == "statement"}
    assert STATEMENT in statements
    kind, title, url, words = statements[STATEMENT]
    assert url == f"swiotlb.html#{make_id(STATEMENT)}" and "MUST NOT" in words
    assert any(e[0] == "guide" and e[2] == "guide-dsl.html" for e in entries)


@pytest.mark.parametrize("bad", ["missing.json", "dir-missing/"])
def test_a_missing_report_is_one_line_and_exit_2(tmp_path, bad):
    proc = run("specc.cli", "docs", str(ROOT / "spec" / "swiotlb.vspec"), "-o",
               str(tmp_path / "site"), "--report", str(tmp_path / bad))
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1, proc.stderr


def test_the_coverage_page_and_the_cards_show_citations(tmp_path):
    src = tmp_path / "cited.vspec"
    src.write_text(CITING_MODULE, encoding="utf-8")
    proc = run("specc.cli", "ids", "--update", "--spec-tree", str(MINI), str(src))
    assert proc.returncode == 0, proc.stderr
    site = tmp_path / "site"
    proc = run("specc.cli", "docs", str(src), "-o", str(site), "--spec-tree", str(MINI))
    assert proc.returncode == 0, proc.stderr
    html = (site / "coverage.html").read_text()
    # the block's statements are the rows up to the next block
    row = html.split('id="drivernormative-reserved-feature-bits"', 1)[1].split(
        'class="target" id="devicenormative', 1)[0]
    assert 'href="cited.html#t-rfb-drv-version"' in row and "(cites statement 1)" in row
    assert "(cites the statement at &#x27;either disable the IOMMU&#x27;)" in row \
        or "(cites the statement at 'either disable the IOMMU')" in row
    assert "How the driver programs an IOMMU is not visible" in row
    assert "<p>Cited</p>" in html
    card = (site / "cited.html").read_text().split('id="t-rfb-drv-version"', 1)[1]
    assert "Cites statement 1 of" in card.split("</div>", 1)[0]
    assert broken_links(site) == []


def test_a_hostile_report_is_shown_as_text(tmp_path):
    # a report is someone else's file: its strings are escaped, never markup or links
    hostile = "x`y <javascript:alert(1)> \\ _z_ |s| **b**"
    report = {"device": hostile, "results": [
        {"requirement": STATEMENT, "verdict": "FAIL", "label": hostile, "keyword": hostile,
         "reason": "javascript:alert(document.domain) `x`_ <b>bold</b>"},
        {"requirement": hostile, "verdict": "PASS"}]}
    (tmp_path / "r.json").write_text(json.dumps(report), encoding="utf-8")
    site = tmp_path / "site"
    proc = run("specc.cli", "docs", str(ROOT / "spec" / "swiotlb.vspec"), "-o", str(site),
               "--report", str(tmp_path / "r.json"))
    assert proc.returncode == 0, proc.stderr
    for page in _pages(site):
        html = page.read_text(encoding="utf-8")
        hrefs = re.findall(r'(?:href|src)="([^"]*)"', html)
        assert not [h for h in hrefs if re.match(r"\s*(javascript|data|vbscript):", h, re.I)]
        assert "<b>bold</b>" not in html
    page = (site / "report-r.html").read_text(encoding="utf-8")
    assert "javascript:alert(document.domain)" in page          # kept, as text
    assert broken_links(site) == []


@pytest.mark.parametrize("rows,status", [
    ((), "missing"),
    ((StatementCoverage("p.x", "p", "extends", True, None),), "missing"),
    ((StatementCoverage("a", "m", "restates", False, "why"),
      StatementCoverage("b", "m", "cites", True, None, "statement 2")), "tested"),
    ((StatementCoverage("a", "m", "restates", False, "why"),
      StatementCoverage("b", "m", "amends", False, "why not")), "untestable"),
    ((StatementCoverage("a", "m", "restates", False, "why"),
      StatementCoverage("b", "m", "restates", False, None)), "restated"),
])
def test_a_block_status_follows_its_statements(rows, status):
    assert BlockCoverage("drivernormative:X", "x.tex", 1, "X", 1, rows).status == status


def test_a_page_title_is_escaped_once():
    html = render_page(Page("x", "x", "=========\nA & <b>\n=========\n\ntext\n"))
    assert "<title>A &amp; &lt;b&gt; · virtio-specc</title>" in html
    assert '<h1 class="title">A &amp; &lt;b&gt;</h1>' in html and "&amp;amp;" not in html
