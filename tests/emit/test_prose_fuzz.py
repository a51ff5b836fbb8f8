"""Any prose an author can type survives both emitters: the RST page renders
without a docutils message and the LaTeX has no bare TeX special."""
import re

from hypothesis import HealthCheck, given, settings, strategies as st

from specc.emit.latex import module_latex
from specc.emit.rst import module_rst
from specc.emit.site import Page, render_page
from specc.parse import parse_source

WORDS = ["MUST", "MUST NOT", "may", "the", "VIRTIO_F_X", "name_", "*x*", "`y`", "|z|", "[1]_",
         "::", "- ", "1.", "#", "%", "$5", "&", "{a}", "~", "^", "\\", "..", ":f:", "<b>", "'q'",
         '"quoted"', "a_b", "__init__", "----", "=", "(c)", "@@", "x@y.org", "\t", "\n\n"]

prose = st.lists(st.sampled_from(WORDS), min_size=1, max_size=14).map(" ".join) \
    .filter(lambda s: s.strip() and '"""' not in s and not s.strip().endswith("\\"))

TEMPLATE = '''
module fuzz {{
  kind proposal
  title "Fuzz"
}}
section "Area" in "Basic Facilities of a Virtio Device" {{
  """{p1}"""
  note """{p2}"""
  device requirements {{
    req fuzz.dev.one {{
      """The device MUST {p3}"""
      untestable "fuzz"
    }}
  }}
}}
'''

# What latex_text may legitimately leave: escaped specials and the few macros it writes.
_ALLOWED = re.compile(r"\\(?:textbackslash|textasciicircum|textasciitilde)\{\}|\\[{}$&#%]"
                      r"|\\(?:section|subsection|label|drivernormative|devicenormative|begin|end)"
                      r"\{[^{}]*\}(?:\{[^{}]*\})*|\{note\}")


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(prose, prose, prose)
def test_any_prose_survives_both_emitters(p1: str, p2: str, p3: str) -> None:
    module, diags = parse_source(TEMPLATE.format(p1=p1, p2=p2, p3=p3), "fuzz.vspec")
    assert module is not None, [d.message for d in diags]
    render_page(Page("fuzz", "fuzz", module_rst(module)))       # raises on any message
    tex = module_latex(module)
    body = "\n".join(ln for ln in tex.splitlines() if not ln.startswith("%"))
    stripped = _ALLOWED.sub("", body)
    stripped = re.sub(r"\\(?:section|subsection)\{[^}]*\}", "", stripped)
    assert not re.search(r"[\\{}$&#%^~]", stripped), stripped
