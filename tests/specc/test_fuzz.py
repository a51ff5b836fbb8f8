"""Whatever text or bytes arrive, specc answers with diagnostics, never with
another exception."""
from __future__ import annotations

from hypothesis import HealthCheck, given, settings, strategies as st

from .conftest import SPEC
from specc.checks import check_modules
from specc.diagnostics import Diagnostic, render_all
from specc.parse import parse_source
from specc.source import read_source

SEED = (SPEC / "swiotlb.vspec").read_text(encoding="utf-8")
TOKENS = ['"""', '"', "{", "}", "@feature(", "@req(x)", ")", "bit 27", "req a MUST {", "check c {",
          "section", "placement {", "->", "\n", "\x00", "é", "MUST", "must", "at 3", "[2]", "#"]


def run_all(text: str) -> None:
    module, diags = parse_source(text, "fuzz.vspec")
    assert all(isinstance(d, Diagnostic) for d in diags)
    if module is not None:
        diags += check_modules([module])
    render_all(diags, {"fuzz.vspec": text})


@st.composite
def mutated(draw):
    text = SEED
    for _ in range(draw(st.integers(1, 6))):
        pos = draw(st.integers(0, len(text)))
        op = draw(st.sampled_from(["delete", "insert", "replace", "duplicate"]))
        n = draw(st.integers(1, 40))
        if op == "delete":
            text = text[:pos] + text[pos + n:]
        elif op == "insert":
            text = text[:pos] + draw(st.sampled_from(TOKENS)) + text[pos:]
        elif op == "replace":
            text = text[:pos] + draw(st.text(max_size=n)) + text[pos + n:]
        else:
            text = text[:pos] + text[pos:pos + n] + text[pos:]
    return text


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated())
def test_mutated_spec_gives_only_diagnostics(text):
    run_all(text)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(TOKENS + list("abc XYZ_0123=.-\t")), max_size=120)
       .map(lambda parts: "module m { kind proposal }\n" + " ".join(parts)))
def test_token_soup_after_a_header_gives_only_diagnostics(text):
    run_all(text)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=400))
def test_random_text_gives_only_diagnostics(text):
    run_all(text)


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=400))
def test_random_bytes_give_only_diagnostics(tmp_path_factory, data):
    path = tmp_path_factory.mktemp("fz") / "b.vspec"
    path.write_bytes(data)
    text, diags = read_source(str(path))
    if text is None:
        assert len(diags) == 1 and diags[0].is_error
    else:
        run_all(text)
