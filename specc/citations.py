"""Citations resolved against an upstream tree: which keyword statement each
`cite` picks out, and whether the tree still says what the registry recorded.

`resolve_citations` reports a citation that picks out nothing (an unknown
block, a fragment found nowhere or in several statements, a number out of
range) and one whose declared keyword the statement does not hold, each at
the module's line. `outdated` compares each cited statement's fingerprint
with the one spec/ids.json recorded: a statement reworded upstream makes
its checks OUTDATED until someone reviews them and records the new wording.
"""
from __future__ import annotations

from specc.limits import MAX_CITE_WORDS
from specc.diagnostics import Diagnostic, error
from specc.model import Module, Statement
from specc.upstream.statements import CiteError, UpstreamStatement, resolve
from specc.upstream.tree import SpecTree


def _hint(candidates: list[str]) -> str | None:
    if not candidates:
        return None
    return "candidates:\n" + "\n".join(f"    {c}" for c in candidates)


def resolve_citations(modules: list[Module], tree: SpecTree
                      ) -> tuple[dict[str, UpstreamStatement], list[Diagnostic]]:
    """The upstream statement of every citation (by statement id), and the errors."""
    found: dict[str, UpstreamStatement] = {}
    diags: list[Diagnostic] = []
    for m in modules:
        for st in m.citations:
            ref = st.cites
            if ref.at is not None and len(ref.at.split()) > MAX_CITE_WORDS:
                continue        # reported by the checks: quote fewer words
            try:
                up = resolve(tree, ref.label, ref.at, ref.index)
            except CiteError as exc:
                pos, width = ((ref.where_pos, len(ref.label) + 2) if exc.on == "where" else
                              (ref.at_pos, len(ref.at) + 2 if ref.at is not None else
                               len(str(ref.index))))
                hint = _hint(exc.candidates)
                if exc.on == "at" and ref.at is not None:
                    hint = ((hint + "\n  ") if hint else "") + (
                        "if upstream reworded the statement, quote words of its new wording, "
                        "review the checks, then run: specc ids --update --spec-tree PATH")
                diags.append(error(f"citation {st.id}: {exc.message}", pos, hint=hint, width=width))
                continue
            if st.keyword not in up.keywords:
                diags.append(error(f"citation {st.id} is declared {st.keyword} but the statement it "
                                   f"picks out ({up.where}) says {' and '.join(up.keywords)}",
                                   st.pos, width=len(st.id)))
            found[st.id] = up
    return found, diags


def outdated_message(st: Statement, up: UpstreamStatement, recorded: str) -> str:
    """The OUTDATED diagnostic's text: which statement changed, and which checks it affects."""
    if st.checks:
        what = "its checks are OUTDATED: " + ", ".join(c.id for c in st.checks)
    else:
        what = "its untestable reason is OUTDATED"
    return (f"OUTDATED: the upstream statement {st.id} cites changed ({up.where}, fingerprint "
            f"{up.fingerprint}, the id registry has {recorded}); {what}")
