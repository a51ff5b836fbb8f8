"""Own words: no prose of ours repeats a sentence of the upstream spec.

The house rule lets facts (names, bits, values) carry over from the virtio
specification but not its sentences.  A text is a near-copy when it shares
a run of 12 or more consecutive words with upstream, or when more than half
of its 8-word windows occur upstream (own_words.is_near_copy).

Without a spec tree the comparison runs against the committed digest (hashes
of upstream 8-grams, no text); with VIRTIO_SPEC_TREE set it also runs exactly
against the tree, checks the digest is current, and checks that real
upstream passages are caught.
"""
from __future__ import annotations

import pytest

from tests.spec_trees import upstream_checkout

from . import own_words as ow
from .conftest import REPO, SPEC

VSPECS = sorted(SPEC.glob("*.vspec"))
DOCS = sorted((REPO / "docs").glob("*.md"))

# A made-up corpus standing in for "upstream" in the unit tests (our words,
# not the spec's), so the expected figures can be worked out by hand.
CORPUS = (
    r"\section{Lanterns}\label{sec:Lanterns}"
    "\n% a comment the build never reads\n"
    r"A lantern keeper lights every lamp on the harbour wall before the "
    r"evening ferry leaves the pier, and puts them out at dawn. "
    r"The \field{wick\_len} field counts millimetres. See \ref{sec:Ferries}."
)
CORPUS_WORDS = 23   # the second sentence ("A lantern ... dawn") has 23 words


def corpus_words():
    from specc.upstream.source import mask
    return ow.latex_words(mask(CORPUS))


def near_copies(samples, index):
    return [(index.measure(s.words), s) for s in samples
            if ow.is_near_copy(index.measure(s.words))]


def describe(found) -> str:
    return "\n".join(f"{s.where}: run {o.run}, {o.share:.0%} of 8-grams shared: {s.text[:120]}"
                     for o, s in found)


# ---- the measuring itself ------------------------------------------------------

def test_latex_markup_is_dropped_and_names_break_runs():
    words = corpus_words()
    # heading and label are names: one break each; the comment is gone
    assert words[:2] == [None, None]
    assert "comment" not in words
    # \field{wick\_len} keeps the field name with its underscore unescaped
    assert "wick_len" in words and "field" in words
    # \ref{...} is a break, so no run can continue through it
    assert words[-1] is None and "ferries" not in words
    first = words.index("a")
    assert words[first:first + CORPUS_WORDS][-1] == "dawn"


def test_normative_block_heading_is_a_name_not_prose():
    words = ow.latex_words(r"\drivernormative{\paragraph}{Lamps}{Harbour / Lamps}"
                           "\nThe keeper trims wicks.")
    assert words == [None, "the", "keeper", "trims", "wicks"]


def test_exact_and_digest_measures_agree_on_a_verbatim_sentence():
    up = corpus_words()
    tree = ow.TreeIndex(up)
    digest = ow.DigestIndex(frozenset(ow.digest_lines(up)))
    copied = ow.words_of("A lantern keeper lights every lamp on the harbour wall "
                         "before the evening ferry leaves the pier, and puts them out at dawn.")
    for index in (tree, digest):
        o = index.measure(copied)
        assert (o.run, o.hits, o.grams) == (CORPUS_WORDS, CORPUS_WORDS - 7, CORPUS_WORDS - 7)
        assert ow.is_near_copy(o)


def test_a_restatement_keeping_the_facts_is_not_a_near_copy():
    up = corpus_words()
    ours = ow.words_of("Every harbour-wall lamp is lit by the lantern keeper ahead of the "
                       "last ferry's departure in the evening; at dawn they go out again.")
    for index in (ow.TreeIndex(up), ow.DigestIndex(frozenset(ow.digest_lines(up)))):
        o = index.measure(ours)
        assert o.run < 8 and o.hits == 0
        assert not ow.is_near_copy(o)


def test_thresholds_sit_where_the_docstring_says():
    up = corpus_words()
    tree = ow.TreeIndex(up)
    # 11 upstream words in a row, padded with own words: below the run limit,
    # and the 8-gram share stays at or under half
    eleven = ow.words_of("lamps: a lantern keeper lights every lamp on the harbour wall "
                         "before dusk, whatever the weather or the season or the tide")
    o = tree.measure(eleven)
    assert o.run == 11 and not ow.is_near_copy(o)
    twelve = ow.words_of("lamps: a lantern keeper lights every lamp on the harbour wall "
                         "before the dusk, whatever the weather or the season or the tide")
    o = tree.measure(twelve)
    assert o.run == 12 and ow.is_near_copy(o)
    # a short text wholly inside upstream: every 8-gram shared
    o = tree.measure(ow.words_of("lights every lamp on the harbour wall before the"))
    assert o.share == 1.0 and ow.is_near_copy(o)


def test_a_run_never_crosses_a_reference():
    up = corpus_words()
    # the text around a @section reference: the break splits the run
    words = ow.words_of("a lantern keeper lights every lamp on") + [None] + \
        ow.words_of("the harbour wall before the evening ferry leaves")
    o = ow.TreeIndex(up).measure(words)
    assert o.run == 8


def test_prose_words_keep_names_and_break_at_section_references():
    from specc.parse import parse_source
    src = '''module m {
  kind baseline
  base "virtio-v1.4-cs01"
  """Set @feature(VIRTIO_F_VERSION_1), read @field(virtio_pci_common_cfg.queue_size),
  see @section(Basic Facilities of a Virtio Device / Feature Bits) now."""
}
'''
    module, diags = parse_source(src, "m.vspec")
    assert module is not None, diags
    words = ow.prose_words(module.prose[0])
    assert words == ["set", "virtio_f_version_1", "read", "queue_size", "see", None, "now"]


def test_markdown_code_fences_are_not_prose(tmp_path):
    md = tmp_path / "x.md"
    md.write_text("Intro line\nwraps here.\n\n```\ncode words here\n```\n\n- item one\n- item two\n",
                  encoding="utf-8")
    texts = [s.text for s in ow.markdown_samples(md)]
    assert texts == ["Intro line wraps here.", "- item one", "- item two"]


# ---- our sources, against the committed digest --------------------------------

@pytest.fixture(scope="module")
def digest():
    return ow.DigestIndex(ow.read_digest())


def test_digest_holds_only_short_hashes_and_stays_small():
    assert ow.DIGEST.stat().st_size < 2 * 1024 * 1024
    import gzip
    lines = gzip.decompress(ow.DIGEST.read_bytes()).decode().splitlines()
    assert lines == sorted(set(lines))
    assert all(len(x) == ow.HASH_HEX and int(x, 16) >= 0 for x in lines)
    # v1.4-cs01 has well over 100,000 words of prose: a digest far smaller
    # than that would mean the LaTeX reader lost most of the text
    assert len(lines) > 80_000


def test_every_vspec_text_is_in_own_words(digest):
    samples = ow.vspec_samples(VSPECS)
    # every module contributes prose; far fewer texts would mean the walk missed some
    assert len(samples) > 300
    assert {s.where.split(":")[0] for s in samples} == {str(p.relative_to(REPO)) for p in VSPECS}
    found = near_copies(samples, digest)
    assert not found, "near-copies of upstream text:\n" + describe(found)


def test_every_docs_paragraph_is_in_own_words(digest):
    samples = [s for p in DOCS for s in ow.markdown_samples(p)]
    assert len(samples) > 100
    found = near_copies(samples, digest)
    assert not found, "near-copies of upstream text:\n" + describe(found)


# ---- with the real tree --------------------------------------------------------

@pytest.fixture(scope="module")
def tree_words():
    return ow.upstream_words(upstream_checkout())


@pytest.fixture(scope="module")
def tree_index(tree_words):
    return ow.TreeIndex(tree_words)


def test_committed_digest_matches_the_tree(tree_words):
    assert set(ow.digest_lines(tree_words)) == set(ow.read_digest()), (
        "regenerate: .venv/bin/python tests/specc/own_words.py digest $VIRTIO_SPEC_TREE")


def test_real_upstream_passages_are_caught(tree_words, tree_index, digest):
    # 40 stretches of 16 words spread over the whole tree, each copied as is
    stretches = []
    step = len(tree_words) // 40
    for start in range(0, len(tree_words), step):
        chunk = tree_words[start:start + 16]
        if len(chunk) == 16 and None not in chunk:
            stretches.append(chunk)
    assert len(stretches) > 25
    for chunk in stretches:
        for index in (tree_index, digest):
            o = index.measure(chunk)
            assert o.run == 16 and ow.is_near_copy(o), (" ".join(chunk), o)


def test_every_vspec_text_is_in_own_words_exactly(tree_index):
    found = near_copies(ow.vspec_samples(VSPECS), tree_index)
    assert not found, "near-copies of upstream text:\n" + describe(found)


def test_every_docs_paragraph_is_in_own_words_exactly(tree_index):
    found = near_copies([s for p in DOCS for s in ow.markdown_samples(p)], tree_index)
    assert not found, "near-copies of upstream text:\n" + describe(found)


def test_generated_patch_adds_only_own_words(tree_index, tmp_path, capsys):
    from specc.cli import main
    out = tmp_path / "series"
    code = main(["patch", str(SPEC / "swiotlb.vspec"), "--spec-tree",
                 str(upstream_checkout()), "-o", str(out), "--signoff",
                 "Ada Author <ada@author.test>"])
    capsys.readouterr()
    assert code == 0
    samples = ow.patch_samples(out)
    assert sum(len(s.words) for s in samples) > 500   # the proposal's whole text
    found = near_copies(samples, tree_index)
    assert not found, "near-copies of upstream text:\n" + describe(found)
