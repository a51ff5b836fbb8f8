"""The tree reader follows the build and reads LaTeX the way TeX does."""
from __future__ import annotations

from specc.upstream.source import mask, normalise_space
from specc.upstream.tree import load_tree


def test_follows_input_in_build_order(planted_tree):
    tree = load_tree(planted_tree)
    # \input{main} finds main.tex; files appear in the order TeX reads them
    assert tree.files == ["virtio.tex", "commands.tex", "main.tex", "content.tex",
                          "device.tex", "conformance.tex"]


def test_normative_path_spanning_lines_is_whitespace_normalised(planted_tree):
    tree = load_tree(planted_tree)
    b = tree.block_by_label("drivernormative:Basic Facilities / Feature Bits")
    assert b is not None and (b.pos.file, b.pos.line) == ("content.tex", 16)
    assert b.enclosing.label == "Basic Facilities / Feature Bits"
    # listed by the clause although the argument is split over two lines
    assert any(r.target == b.label for c in tree.clauses for r in c.items)


def test_comments_are_ignored_but_escaped_percent_is_not_a_comment(planted_tree):
    tree = load_tree(planted_tree)
    assert tree.block_by_label("drivernormative:Basic Facilities / Nowhere") is None
    b = tree.block_by_label("drivernormative:Basic Facilities / Feature Bits")
    assert [k.word for k in b.keywords] == ["MUST NOT", "SHOULD"]


def test_listing_text_is_not_read_as_latex(planted_tree):
    tree = load_tree(planted_tree)
    assert not any(k.pos.file == "content.tex" and k.pos.line == 34 for k in tree.keywords)


def test_hand_written_normative_heading_is_a_block(planted_tree):
    tree = load_tree(planted_tree)
    b = tree.block_by_label("devicenormative:Device Types / Widget Device / Device Operation")
    assert b is not None and b.role == "device"
    assert [k.word for k in b.keywords] == ["SHOULD"]


def test_allocation_list_and_features(planted_tree):
    tree = load_tree(planted_tree)
    alloc = {a.category: [str(r) for r in a.ranges] for a in tree.allocation}
    assert alloc == {"device": ["0 to 23", "50 to 127"], "extensions": ["24 to 40", "43"],
                     "future": ["44 to 49", "128 and above"]}
    feats = {(f.name, f.bit, f.scope) for f in tree.features}
    assert ("VIRTIO_F_VERSION_1", 32, "device-independent") in feats
    assert ("VIRTIO_WIDGET_F_SLOW", 1, "Device Types / Widget Device") in feats
    # a dependency list (no bit number) defines nothing
    assert sum(1 for f in tree.features if f.name == "VIRTIO_WIDGET_F_FAST") == 1


def test_mask_keeps_offsets_and_lines():
    text = "a % c\n\\begin{lstlisting}\nx % y\n\\end{lstlisting} % z\n50\\% w\n"
    m = mask(text)
    assert len(m) == len(text) and m.count("\n") == text.count("\n")
    assert "c" not in m.splitlines()[0] and "% y" not in m and "z" not in m
    assert m.splitlines()[4] == "50\\% w"


def test_normalise_space_keeps_edge_spaces_like_tex():
    assert normalise_space("A /\n   B") == "A / B"
    assert normalise_space("RSS) ") == "RSS) "


from hypothesis import given, strategies as st

_tex_chars = st.sampled_from(list("ab %\\{}\n") + ["\\begin{lstlisting}", "\\end{lstlisting}",
                                                    "\\%", "MUST", "\\item"])


@given(st.lists(_tex_chars, max_size=60).map("".join))
def test_mask_never_moves_text(text):
    m = mask(text)
    assert len(m) == len(text)
    # line breaks stay where they are; anything else is kept or blanked, never changed
    assert all(a == b or (b == " " and a != "\n") for a, b in zip(text, m))


_snippets = st.sampled_from([
    "\\chapter{A}", "\\section{B}\\label{sec:A / B}", "\\drivernormative{\\subsection}{B}{A / B}",
    "\\devicenormative{\\paragraph}{x}{", "\\conformance{\\section}{C}", "\\item[VIRTIO_F_X(3)]",
    "\\item[0 to 3]", "\\begin{description}", "\\end{description}", "\\begin{itemize}", "\\end{itemize}",
    "\\ref{sec:A}", "\\hyperref[", "\\label{", "MUST", "MAY NOT", "%", "{", "}", "[", "]", "\n", " ",
    "\\begin{lstlisting}", "\\end{lstlisting}", "\\input{commands}", "\\appendix", "text"])


@given(st.lists(_snippets, max_size=40).map("".join))
def test_any_text_gives_a_tree_or_a_one_line_error(tmp_path_factory, body):
    from specc.audit import audit
    from specc.upstream.tree import TreeError
    d = tmp_path_factory.mktemp("fuzz")
    (d / "virtio.tex").write_text(body)
    (d / "commands.tex").write_text("")
    try:
        tree = load_tree(d)
    except TreeError as exc:
        assert "\n" not in str(exc)
        return
    for f in audit(tree):
        assert f.pos.line >= 1 and f.pos.col >= 1 and "\n" not in f.message
