"""The link checker itself must catch what it is meant to catch."""
from pathlib import Path

from tests.emit.linkcheck import broken_links


def test_reports_missing_anchor_missing_page_and_duplicates(tmp_path: Path) -> None:
    (tmp_path / "a.html").write_text(
        '<p id="x">x</p><p id="x">again</p>'
        '<a href="#x">ok</a><a href="#nope">bad</a>'
        '<a href="b.html#y">ok</a><a href="b.html#z">bad</a>'
        '<a href="c.html">bad</a><a href="https://example.org/#q">external</a>')
    (tmp_path / "b.html").write_text('<h1 id="y">y</h1>')
    assert sorted(broken_links(tmp_path)) == sorted([
        "a.html: duplicate id 'x'",
        "a.html: #nope (no such anchor)",
        "a.html: b.html#z (no such anchor)",
        "a.html: c.html (no such file)",
    ])


def test_clean_site_has_no_problems(tmp_path: Path) -> None:
    (tmp_path / "index.html").write_text('<a href="m.html#s">m</a><link href="style.css">')
    (tmp_path / "m.html").write_text('<section id="s"><a href="index.html">up</a></section>')
    (tmp_path / "style.css").write_text("")
    assert broken_links(tmp_path) == []
