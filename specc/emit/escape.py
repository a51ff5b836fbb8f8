"""Escaping of plain prose for the two text formats we emit.

Both functions take text as the author wrote it (no markup) and return text
that the target format renders as exactly those characters.
"""
from __future__ import annotations

import re
from urllib.parse import urlsplit

# The virtio spec loads the ``underscore`` package, so ``_`` is typed bare in
# text (feature names such as VIRTIO_F_VERSION_1 appear unescaped throughout
# content.tex); every other TeX special character needs a form of its own.
_LATEX_SPECIALS = {
    "\\": r"\textbackslash{}",
    "{": r"\{",
    "}": r"\}",
    "$": r"\$",
    "&": r"\&",
    "#": r"\#",
    "%": r"\%",
    "^": r"\textasciicircum{}",
    "~": r"\textasciitilde{}",
}
_LATEX_RE = re.compile("|".join(re.escape(c) for c in _LATEX_SPECIALS))

# Characters that cannot appear in a \label / \ref argument even after
# escaping: upstream labels are title paths typed verbatim.
_LABEL_FORBIDDEN = set("\\{}%#~^$&")


def latex_text(text: str) -> str:
    """Escape prose for LaTeX in the upstream house style (bare underscores)."""
    return _LATEX_RE.sub(lambda m: _LATEX_SPECIALS[m.group(0)], text)


def latex_item_label(text: str) -> str:
    """Escape text for the optional argument of ``\\item[...]``.

    A bare ``]`` would end the optional argument early; bracing it hides it.
    """
    return latex_text(text).replace("]", "{]}").replace("[", "{[}")


# Inside ``lstlisting`` every character is verbatim until the first
# ``\end{lstlisting}`` (listings also takes spaces before the brace), so no
# escape can hide that sequence: text that holds it cannot go into a listing.
_LISTING_END = re.compile(r"\\end\s*\{\s*lstlisting\s*\}")


def listing_text_ok(text: str) -> bool:
    """True when ``text`` can be written verbatim inside an ``lstlisting``."""
    return _LISTING_END.search(text) is None


def listing_comment(text: str) -> str:
    """A C comment holding ``text`` for a listing; ValueError when it cannot be one."""
    if not listing_text_ok(text):
        raise ValueError("text holding \\end{lstlisting} cannot go into a listing: "
                         "it would end the listing and the rest would be live TeX")
    return "/* " + " ".join(text.split()).replace("*/", "* /") + " */"


def latex_label_ok(label: str) -> bool:
    """True when ``label`` can be written verbatim inside \\label{} or \\ref{}."""
    return not (set(label) & _LABEL_FORBIDDEN)


# --- RST -----------------------------------------------------------------

# Inline markup characters that a backslash turns into themselves.
_RST_ALWAYS = re.compile(r"([\\*`|])")
# ``_`` only matters where it could end a reference name (``word_``) or start
# an inline target (``_`x```); inside identifiers it is plain text, and keeping
# VIRTIO_F_SWIOTLB readable in the .rst source matters.
_RST_UNDERSCORE = re.compile(r"_+(?=$|[^\w])")
# A trailing ``::`` would turn the next block into a literal block.
_RST_DOUBLE_COLON = re.compile(r"::(?=\s*$)")
# Paragraph starts that RST could read as a list, directive, field list,
# table or transition: anything not starting with a letter or digit, and a
# leading word that looks like an enumerator ("1.", "a)", "iv.").
_RST_ENUMERATOR = re.compile(r"^\w+[.)]")


# Links the docs may hold: web pages, mail addresses and anchors on the site
# itself (a relative reference has no scheme). Anything else, javascript: or
# data: above all, stays text.
LINK_SCHEMES = ("http", "https", "mailto")
# docutils links ``scheme:rest`` for every scheme it knows, also after "-",
# "." or "+"; a backslash before the colon keeps the text and drops the link.
_RST_SCHEME = re.compile(r"(?<![A-Za-z0-9.+-])([A-Za-z0-9.+-]+):(?=\S)")


def safe_link(uri: str) -> bool:
    """True when ``uri`` may become a link: http, https, mailto, or in-site."""
    uri = uri.strip()
    try:
        scheme = urlsplit(uri).scheme.lower()
    except ValueError:
        return False
    if scheme:
        return scheme in LINK_SCHEMES
    return not uri.startswith(("/", "\\"))


def _unlink_scheme(m: re.Match) -> str:
    return m.group(0) if m.group(1).lower() in LINK_SCHEMES else m.group(1) + "\\:"


def rst_text(text: str) -> str:
    """Escape a run of inline prose for RST (one paragraph, single line)."""
    text = " ".join(text.split())
    text = _RST_ALWAYS.sub(r"\\\1", text)
    text = _RST_SCHEME.sub(_unlink_scheme, text)
    text = _RST_UNDERSCORE.sub(lambda m: "\\_" * len(m.group(0)), text)
    if text.endswith("::"):   # a paragraph ending so announces a literal block
        text = text[:-1] + "\\:"
    return text


# In a hyperlink target or reference name (``.. _`name`:``, ```text <name_>`__``)
# these end the name or the phrase early unless escaped; an underscore only
# where it could end a reference (VIRTIO_F_X stays readable).
_RST_NAME = re.compile(r"([\\`<>:])")


def rst_name(name: str) -> str:
    """Escape a target or reference name (whitespace collapsed, as docutils compares names)."""
    name = _RST_NAME.sub(r"\\\1", " ".join(name.split()))
    return _RST_UNDERSCORE.sub(lambda m: "\\_" * len(m.group(0)), name)


def rst_paragraph(text: str) -> str:
    """Escape a whole paragraph: inline escapes plus block-level starts and ends."""
    return rst_block_safe(rst_text(text))


def rst_block_safe(line: str, markup_first: bool = False) -> str:
    """Make an inline-escaped line safe as a paragraph of its own.

    ``markup_first``: the line may start with inline markup the caller wrote
    (a role, a reference, emphasis), which must not be escaped."""
    if not line:
        return line
    if len(set(line)) == 1 and not line[0].isalnum():
        # A run of one punctuation character is a transition or an underline.
        line = line[:2] + "\\ " + line[2:] if line[0] == "\\" else "\\" + line
        return _RST_DOUBLE_COLON.sub(r":\\:", line)
    starts_markup = markup_first and line[0] in "`:*"
    if ((not line[0].isalnum() and not line.startswith("\\") and not starts_markup)
            or _RST_ENUMERATOR.match(line)):
        line = "\\" + line
    return _RST_DOUBLE_COLON.sub(r":\\:", line)


# --- commit messages and file names ----------------------------------------

# Lines that `git am` (mailinfo) takes for the start of the patch or a
# scissors line: everything after one would leave the commit message.
_PATCH_BREAK = re.compile(r"^(?:diff -|Index: |---(?:\s*$| \S)|-- ?>8 ?--|-- ?8< ?--)")


def commit_message_text(text: str) -> str:
    """Text for the body of a commit message that `git am` keeps whole.

    A line that mailinfo would read as the start of the diff (or a scissors
    line) gets a leading space, which it does not."""
    return "\n".join(" " + ln if _PATCH_BREAK.match(ln) else ln for ln in text.split("\n"))


_FILE_STEM = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")


def file_stem(name: str) -> str:
    """``name`` as the stem of an output file; ValueError when it could name another place."""
    if not _FILE_STEM.fullmatch(name) or name.endswith("."):
        raise ValueError(f"'{name[:60]}' cannot be an output file name (letters, digits, "
                         "'_', '.' and '-', at most 128)")
    return name


_WEB_LINK = re.compile(r"https?://[^\s\x00-\x1f\x7f]+")


def is_web_link(text: str) -> bool:
    """An http(s) URL on one line, as a Fixes: trailer holds."""
    return _WEB_LINK.fullmatch(text) is not None
