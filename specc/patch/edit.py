"""Edits to an upstream spec tree, and the pure function that applies them."""
from __future__ import annotations

from dataclasses import dataclass

from specc.patch.anchors import Anchor, AnchorError, Span, resolve_anchor
from specc.upstream.tree import SpecTree

# One commit per area, in this order (the subject prefix is "<area>: ").
AREAS = ("introduction", "content", "transport-pci", "transport-mmio", "transport-ccw", "conformance")
ACTIONS = ("after", "before", "replace")


@dataclass(frozen=True)
class Edit:
    """Put `text` at `anchor` in upstream `file`, as part of the commit for `area`.

    action: "after" the anchored span (default; for a point anchor, at the
    point), "before" it, or "replace" it. `text` is inserted verbatim: an
    inserted block of lines ends with a newline."""
    file: str
    anchor: Anchor
    text: str
    area: str
    action: str = "after"

    def describe(self) -> str:
        return f"{self.file}: {self.action} {self.anchor.describe()}"


def check_edit(edit: Edit) -> None:
    if edit.action not in ACTIONS:
        raise AnchorError(f"{edit.file}: unknown action '{edit.action}' (use after, before or replace)")


def resolve_edits(tree: SpecTree, edits: list[Edit]) -> list[tuple[Edit, Span]]:
    """Resolve every anchor against the unmodified tree (all errors name file and anchor)."""
    out = []
    for e in edits:
        check_edit(e)
        out.append((e, resolve_anchor(tree, e.file, e.anchor)))
    return out


def apply_edits(tree: SpecTree, edits: list[Edit]) -> dict[str, str]:
    """New texts of the files the edits touch; the tree itself is not changed.

    All anchors are resolved against the original text, so the result does not
    depend on the order of edits in different places; edits at the same place
    keep their list order. Overlapping replacements are an error."""
    resolved = resolve_edits(tree, edits)
    by_file: dict[str, list[tuple[int, int, int, Edit]]] = {}
    for idx, (e, span) in enumerate(resolved):
        if e.action == "replace":
            start, end = span.start, span.end
        elif e.action == "before":
            start = end = span.start
        else:
            start = end = span.end
        by_file.setdefault(e.file, []).append((start, end, idx, e))
    out: dict[str, str] = {}
    for file, items in by_file.items():
        text = tree.sources[file].text
        items.sort(key=lambda t: (t[0], t[1] != t[0], t[2]))
        parts: list[str] = []
        cur = 0
        last: Edit | None = None
        for start, end, _, e in items:
            if start < cur:
                raise AnchorError(f"{file}: edits overlap: {e.anchor.describe()} and "
                                  f"{last.anchor.describe() if last else '?'}")
            parts.append(text[cur:start])
            parts.append(e.text)
            cur = end
            last = e
        parts.append(text[cur:])
        out[file] = "".join(parts)
    return out


def edits_by_area(edits: list[Edit]) -> list[tuple[str, list[Edit]]]:
    """The edits grouped into commits, in the fixed area order (empty areas left out)."""
    for e in edits:
        if e.area not in AREAS:
            raise AnchorError(f"{e.file}: unknown area '{e.area}' (use one of {', '.join(AREAS)})")
    return [(a, [e for e in edits if e.area == a]) for a in AREAS
            if any(e.area == a for e in edits)]
