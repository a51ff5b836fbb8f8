"""Escaping: prose typed by an author comes out as the same characters."""
import io

from docutils.core import publish_doctree
from hypothesis import given, settings, strategies as st

from specc.emit.escape import (latex_item_label, latex_label_ok, latex_text, rst_paragraph,
                                rst_text)


def test_each_tex_special_gets_its_text_form() -> None:
    # The ten characters TeX treats specially, one by one (LaTeX companion,
    # "special characters"): underscores stay bare because the virtio spec
    # loads the underscore package.
    assert latex_text("\\") == r"\textbackslash{}"
    assert latex_text("{") == r"\{"
    assert latex_text("}") == r"\}"
    assert latex_text("$") == r"\$"
    assert latex_text("&") == r"\&"
    assert latex_text("#") == r"\#"
    assert latex_text("^") == r"\textasciicircum{}"
    assert latex_text("_") == "_"
    assert latex_text("%") == r"\%"
    assert latex_text("~") == r"\textasciitilde{}"


def test_feature_names_are_typed_bare_as_in_content_tex() -> None:
    assert latex_text("VIRTIO_F_SWIOTLB") == "VIRTIO_F_SWIOTLB"


def test_a_sentence_mixing_specials() -> None:
    assert (latex_text("50% of {a} & b#1 cost $5 ~ ^x \\n")
            == r"50\% of \{a\} \& b\#1 cost \$5 \textasciitilde{} \textasciicircum{}x \textbackslash{}n")


def test_escaping_never_rescans_its_own_output() -> None:
    # A backslash becomes \textbackslash{}; its braces must not be escaped again.
    assert latex_text("\\{") == r"\textbackslash{}\{"


def test_item_label_hides_brackets_from_the_optional_argument() -> None:
    assert latex_item_label("a[0]") == "a{[}0{]}"


def test_labels_with_tex_specials_are_refused() -> None:
    assert latex_label_ok("sec:Virtio Transport Options / Virtio Over PCI Bus")
    assert not latex_label_ok("sec:50% done")
    assert not latex_label_ok("sec:a{b}")


def _rst_roundtrip(text: str) -> str:
    doc = publish_doctree(rst_paragraph(text), settings_overrides={
        "report_level": 1, "halt_level": 5, "warning_stream": io.StringIO(),
        "_disable_config": True})
    return doc.astext()


def test_rst_inline_markup_is_neutralised() -> None:
    for text in ["*not emphasis*", "``not literal``", "`not a ref`_", "name_ and anon__",
                 "|subst|", "VIRTIO_F_SWIOTLB_", "C:\\path", "[1]_"]:
        assert _rst_roundtrip(text) == text


def test_rst_block_starts_are_neutralised() -> None:
    for text in ["- not a list", "1. not enumerated", ".. not a comment", ":not: a field",
                 "ends in a literal marker::", "----", "#. auto", "(a) item", "| line"]:
        assert _rst_roundtrip(text) == text


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("ab_*`|\\:.-#()[]<>= 1")), min_size=1, max_size=30)
       .filter(lambda s: s.strip()))
def test_rst_escaping_round_trips_through_docutils(text: str) -> None:
    assert _rst_roundtrip(text) == " ".join(text.split())


def test_rst_text_ending_in_a_double_colon_starts_no_literal_block() -> None:
    # A table cell or paragraph ending in "::" would announce a literal block
    # (an untestable reason of "::" broke the coverage page this way).
    for text in ["::", "see below::", "a :: b::"]:
        doc = publish_doctree(rst_text(text), settings_overrides={
            "report_level": 1, "halt_level": 5, "warning_stream": io.StringIO(),
            "_disable_config": True})
        assert doc.astext() == text
