"""Hostile text in a module cannot escape the output context it is written into
(issue 19): LaTeX listings, RST/HTML links."""
from __future__ import annotations

import dataclasses
import re
import subprocess

import pytest
from hypothesis import given, strategies as st

from specc.emit.escape import (commit_message_text, file_stem, listing_comment, rst_paragraph,
                               safe_link)
from specc.emit.latex import LatexError, constant_define
from specc.emit.rst import module_rst
from specc.emit.site import Page, SiteError, render_page

from .conftest import SWIOTLB, specc

INJECTION = r"x \end{lstlisting}\input{/etc/passwd}\immediate\write18{id} \begin{lstlisting}"


def test_listing_comment_that_would_end_the_listing_is_an_error_in_check(tmp_path):
    # item 1: constant prose lands as a C comment inside an upstream lstlisting
    text = SWIOTLB.read_text(encoding="utf-8").replace(
        '"Software IOTLB bounce buffer region"', f'"{INJECTION}"')
    src = tmp_path / "inj.vspec"
    src.write_text(text, encoding="utf-8")
    proc = specc("check", "--no-registry", str(src))
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "VIRTIO_PCI_CAP_SWIOTLB_CFG holds \\end{lstlisting}" in proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.mark.parametrize("end", [r"\end{lstlisting}", r"\end {lstlisting}", r"\end{ lstlisting }"])
def test_the_listing_writer_refuses_what_would_end_the_listing(swiotlb, end):
    c = swiotlb.constants[0]
    prose = dataclasses.replace(c.prose[0], pieces=(type(c.prose[0].pieces[0])(f"a {end} b"),))
    with pytest.raises(LatexError, match="cannot go into a listing"):
        constant_define(dataclasses.replace(c, prose=(prose,)))


@given(st.text(alphabet="\\end{lstig} */x\n", max_size=60))
def test_a_listing_comment_never_ends_the_listing_or_the_comment(text):
    try:
        out = listing_comment(text)
    except ValueError:
        return
    body = out[3:-3]
    assert "*/" not in body and "\n" not in body
    assert "\\end{lstlisting}" not in "".join(out.split())


# -- RST / HTML: links are http, https, mailto or in-site -----------------------------------

JS = "javascript:alert(document.domain)//x"
HEADER = 'module m {\n  kind baseline\n  base "virtio-v1.4-cs01"\n}\n'


def _hrefs(html: str) -> list[str]:
    return re.findall(r'(?:href|src)="([^"]*)"', html)


def test_a_javascript_uri_in_prose_title_or_fixes_never_becomes_a_link(tmp_path):
    # item 2: docutils auto-links every scheme it knows
    src = tmp_path / "m.vspec"
    src.write_text(HEADER + f'section "{JS}" in "Basic Facilities of a Virtio Device" {{\n'
                   f'  "see {JS}, x-{JS}, data:text/html,hi, https://ok.example/ and mailto:a@b.example"\n'
                   '}\n', encoding="utf-8")
    proc = specc("docs", "-o", str(tmp_path / "site"), str(src))
    assert proc.returncode == 0, proc.stderr
    html = (tmp_path / "site" / "m.html").read_text(encoding="utf-8")
    hrefs = _hrefs(html)
    assert "https://ok.example/" in hrefs and "mailto:a&#64;b.example" in hrefs
    assert all(safe_link(h) for h in hrefs), hrefs
    assert html.count("javascript:alert(document.domain)//x") >= 3     # the text is kept


def test_a_javascript_fixes_link_in_a_model_that_skipped_check_is_text(swiotlb):
    page = module_rst(dataclasses.replace(swiotlb, fixes=JS))
    html = render_page(Page("swiotlb", "swiotlb", page))
    assert JS in html and all(safe_link(h) for h in _hrefs(html))


def test_the_site_refuses_a_page_whose_rst_links_elsewhere():
    with pytest.raises(SiteError, match="not http, https, mailto or in-site"):
        render_page(Page("p", "p", "Title\n=====\n\n`x <javascript:alert(1)>`__\n"))


@pytest.mark.parametrize("uri,ok", [
    ("http://a.example/", True), ("HTTPS://a.example/", True), ("mailto:a@b.example", True),
    ("m.html#anchor", True), ("#anchor", True), ("javascript:x", False),
    (" JavaScript:x", False), ("java\tscript:x", False), ("data:text/html,x", False),
    ("vbscript:x", False), ("//evil.example/", False), ("file:///etc/passwd", False)])
def test_safe_link(uri, ok):
    assert safe_link(uri) is ok


@given(st.lists(st.sampled_from(["javascript", "data", "x-javascript", "http", "file", "a",
                                 ":", "//", "alert(1)", " ", "-", ".", "mailto", "@", "_", "`"]),
                max_size=12).map("".join))
def test_escaped_prose_renders_no_unsafe_link(text):
    html = render_page(Page("p", "p", "Title\n=====\n\n" + rst_paragraph(text) + "\n"))
    assert all(safe_link(h) for h in _hrefs(html))


# -- commit messages -------------------------------------------------------------------------

# the first line of the content commit's message in spec/swiotlb.vspec
WHY = "  A device emulated outside the guest's trust boundary should not need"


def _content_patch(out):
    """The content: patch of a series (the introduction: patch may come first)."""
    return sorted(out.glob("0*-content-*.patch"))[0]


def _swiotlb_with(tmp_path, old: str, new: str):
    text = SWIOTLB.read_text(encoding="utf-8")
    assert old in text
    src = tmp_path / "swiotlb.vspec"
    src.write_text(text.replace(old, new, 1), encoding="utf-8")
    return src


def test_a_commit_message_longer_than_one_argument_may_be_is_written(mini_repo, tmp_path):
    # item 11: the message went to git as one argv string (Linux allows 128 KiB)
    words = " ".join(f"word{i}" for i in range(20_000))           # about 130 KB
    src = _swiotlb_with(tmp_path, WHY, f"  {words}\n\n{WHY}")
    proc = specc("patch", str(src), "--spec-tree", str(mini_repo), "-o", str(tmp_path / "out"),
                 "--signoff", "Ada Author <ada@author.test>")
    assert proc.returncode == 0, proc.stderr[-500:]
    first = _content_patch(tmp_path / "out").read_text(encoding="utf-8")
    assert "word19999" in first


# -- item 14: titles with RST markup characters make valid targets --------------------------

TITLE_HEADER = 'module m {\n  kind baseline\n  base "virtio-v1.4-cs01"\n}\n'
PARENT = "Basic Facilities of a Virtio Device"


def _docs_with_title(tmp_path, title: str) -> subprocess.CompletedProcess:
    src = tmp_path / "t.vspec"
    src.write_text(TITLE_HEADER + f'section "{title}" in "{PARENT}" {{\n'
                   f'  "see @section({PARENT} / {title})"\n}}\n', encoding="utf-8")
    return specc("docs", "-o", str(tmp_path / "site"), str(src))


@pytest.mark.parametrize("title", ["A `b` c", "x`_", "<a>", "a``b", "A_ `b`_", "a: b", "_x",
                                   "a__", "|x|", "*a*"])
def test_a_section_title_with_markup_characters_builds_and_links(tmp_path, title):
    proc = _docs_with_title(tmp_path, title)
    assert proc.returncode == 0, proc.stderr
    html = (tmp_path / "site" / "m.html").read_text(encoding="utf-8")
    links = [h[1:] for h in _hrefs(html) if h.startswith("#")]
    assert links and all(f'id="{a}"' in html for a in links)


# -- item 15: the feature bit range ----------------------------------------------------------

@pytest.mark.parametrize("bit", [2**31, 1024])
def test_a_feature_bit_beyond_the_supported_range_is_an_error_in_check(tmp_path, bit):
    src = _swiotlb_with(tmp_path, "  bit 44\n", f"  bit {bit}\n")
    proc = specc("check", "--no-registry", str(src))
    assert proc.returncode == 2 and f"bit {bit} of VIRTIO_F_SWIOTLB is beyond" in proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.mark.parametrize("bit,future", [(128, "44 to 49, and 129 and above"),
                                        (131, "44 to 49, 128 to 130, and 132 and above")])
def test_a_bit_from_the_open_future_range_moves_to_the_extensions(mini_repo, tmp_path, bit, future):
    # item 15: patch refused bit 128 saying it was not in '44 to 49, and 128 and above'
    src = _swiotlb_with(tmp_path, "  bit 44\n", f"  bit {bit}\n")
    assert specc("check", "--no-registry", str(src)).returncode == 0
    proc = specc("patch", str(src), "--spec-tree", str(mini_repo), "-o", str(tmp_path / "out"),
                 "--signoff", "Ada Author <ada@author.test>")
    assert proc.returncode == 0, proc.stderr
    content = _content_patch(tmp_path / "out").read_text(encoding="utf-8")
    assert f"+\\item[{future}]" in content
    assert f"43 and {bit}]" in content


# -- commit messages and file names ----------------------------------------------------------

@pytest.mark.parametrize("line", ["diff --git a/x b/x", "--- a/content.tex", "---", "Index: x",
                                  "-- >8 --"])
def test_a_body_line_git_am_would_read_as_the_patch_is_kept_in_the_message(line):
    text = commit_message_text(f"first\n{line}\nlast")
    assert text.split("\n")[1] == " " + line
    assert commit_message_text("a -- b\n- item\n--x") == "a -- b\n- item\n--x"


def test_motivation_text_that_looks_like_a_diff_survives_git_am(mini_repo, tmp_path):
    # Prose is filled to 72 columns, so a word can start a line: put one there.
    filler = "x" * 70
    src = _swiotlb_with(tmp_path, WHY, f"  {filler} --- a/content.tex\n\n{WHY}")
    out = tmp_path / "out"
    proc = specc("patch", str(src), "--spec-tree", str(mini_repo), "-o", str(out),
                 "--signoff", "Ada Author <ada@author.test>")
    assert proc.returncode == 0, proc.stderr
    first = _content_patch(out)
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(mini_repo), str(clone)], check=True,
                   capture_output=True)
    am = subprocess.run(["git", "-c", "user.name=T", "-c", "user.email=t@example.org", "am", "-q",
                         str(first)], cwd=clone, capture_output=True, text=True)
    assert am.returncode == 0, am.stderr
    body = subprocess.run(["git", "log", "-1", "--format=%B"], cwd=clone, capture_output=True,
                          text=True).stdout
    assert "--- a/content.tex" in body and "Signed-off-by: Ada Author <ada@author.test>" in body


@pytest.mark.parametrize("name", ["..", "a/b", "/etc/x", "", "x" * 129, "a.", "-a", "a\nb"])
def test_names_that_could_name_another_place_are_not_output_file_names(name):
    with pytest.raises(ValueError):
        file_stem(name)
    assert file_stem("virtio_blk.v2-x") == "virtio_blk.v2-x"


@pytest.mark.parametrize("fixes", ["javascript:alert(1)", "https://a.example/ x", "see issue 12"])
def test_fixes_must_be_a_web_link(tmp_path, mini_repo, fixes):
    src = _swiotlb_with(tmp_path, '  subject "content"\n', f'  subject "content"\n  fixes "{fixes}"\n')
    proc = specc("check", "--no-registry", str(src))
    assert proc.returncode == 2 and "'fixes' is not a web link" in proc.stderr
    proc = specc("patch", str(SWIOTLB), "--spec-tree", str(mini_repo), "-o", str(tmp_path / "o"),
                 "--signoff", "Ada Author <ada@author.test>", "--fixes", fixes)
    assert proc.returncode == 2 and "is not a web link" in proc.stderr
