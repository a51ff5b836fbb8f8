"""A proposal's placement, turned into Edits of an upstream spec tree.

Each `placement` line of a module names a part (feature, allocation,
section, constant, requirements block, unsupported-on-transport), a file and
an anchor written the author's way (`before label "sec:..."`, `after item
"VIRTIO_F_SUSPEND(43)"`, `before text "\\input{admin.tex}"`). This module
maps those onto the anchor vocabulary of `specc.patch` and attaches the
LaTeX from `specc.emit.latex`. The tree is only read: it tells which
section holds a piece of text, what the allocation list says today, and
whether a bit is already taken.
"""
from __future__ import annotations

import re

from specc.emit.bit_ranges import format_bit_ranges, parse_bit_ranges
from specc.amend import AmendError, apply_amendment
from specc.checks import needs_placement
from specc.emit.latex import (LatexError, RefIndex, block_additions, conformance_item,
                              constant_define, feature_item, reference_row, reserved_item,
                              section_latex)
from specc.model import DEVICE_INDEPENDENT, Feature, Module, Placement, Section
from specc.patch.anchors import (AllocationItem, AnchorError, FeatureSlot, LineAfter,
                                 ListEnd, Located, NormativeEnd, SectionEnd, SectionStart, Text)
from specc.patch.edit import AREAS, Edit
from specc.upstream.passages import find_fragment
from specc.upstream.tree import SpecTree

RESERVED_TITLE = "Features reserved for future use"
TRANSPORT_FILES = {"mmio": "transport-mmio.tex", "ccw": "transport-ccw.tex"}
CONFORMANCE_FILE = "conformance.tex"


class PlacementError(Exception):
    """A placement that cannot become an edit (one line, with the source position)."""


def area_of(file: str) -> str:
    stem = file.rsplit("/", 1)[-1].removesuffix(".tex")
    if stem not in AREAS:
        raise PlacementError(f"{file}: no patch area for this file (areas: {', '.join(AREAS)})")
    return stem


def _where(p: Placement) -> str:
    return f"{p.pos}: " if p.pos else ""


def _feature(m: Module, name: str, p: Placement) -> Feature:
    for f in m.features:
        if f.name == name:
            return f
    raise PlacementError(f"{_where(p)}placement names feature {name}, which the module does not define")


def _section(m: Module, path: str, p: Placement) -> Section:
    for s in m.sections:
        if s.title_path == path:
            return s
    raise PlacementError(f"{_where(p)}placement names section '{path}', which is not a "
                         "top-level section of the module")


def _norm(s: str) -> str:
    return " ".join(s.split())


# -- text anchors: find the section that holds the text -------------------------------

def _innermost_section_label(tree: SpecTree, file: str, needle: str, p: Placement) -> dict:
    """The label= or title= of the innermost section of ``file`` holding ``needle`` once."""
    src = tree.sources.get(file)
    if src is None:
        raise AnchorError(f"{file}: anchor not found: text '{needle}' ({file} is not read by the build)")
    hits = [s for s, _ in find_fragment(src.text, needle)]
    if not hits:
        raise AnchorError(f"{file}: anchor not found: text '{needle}' (the upstream text has changed?)")
    if len(hits) > 1:
        raise AnchorError(f"{file}: anchor text '{needle}' is ambiguous ({len(hits)} occurrences)")
    at = hits[0]
    holders = [s for s in tree.sections if s.file == file and s.offset <= at < s.end_offset]
    if not holders:
        raise AnchorError(f"{file}: anchor text '{needle}' is outside every section")
    # The innermost labelled section names the place best (normative
    # headings carry no sec: label of their own).
    labelled = [s for s in holders if s.label] or holders
    sec = max(labelled, key=lambda s: (s.level, s.offset))
    if sec.label:
        return {"label": "sec:" + sec.label}
    return {"title": sec.title}


def _point(tree: SpecTree, p: Placement):
    """(anchor, action) for a section-like part placed before/after/end-of something."""
    if p.anchor_kind == "label":
        label = p.anchor
        if label.startswith(("drivernormative:", "devicenormative:")):
            if p.position != "end-of":
                raise PlacementError(f"{_where(p)}a normative block can only be extended "
                                     f"(end-of label \"{label}\")")
            return NormativeEnd(label), "after"
        if p.position == "before":
            return SectionStart(label=label), "before"
        return SectionEnd(label=label), "after"
    if p.anchor_kind == "text":
        where = _innermost_section_label(tree, p.file, p.anchor, p)
        if p.position == "before":
            return Text(p.anchor, **where), "before"
        return LineAfter(p.anchor, **where), "after"
    raise PlacementError(f"{_where(p)}'{p.position} item' cannot place a {p.part_kind}; "
                         "use a label or text anchor")


# -- one placement -------------------------------------------------------------------------

def _allocation_edits(m: Module, tree: SpecTree, p: Placement) -> list[Edit]:
    f = _feature(m, p.target, p)
    if f.scope != DEVICE_INDEPENDENT or f.bit is None:
        raise PlacementError(f"{_where(p)}only a device-independent feature with a bit "
                             "changes the allocation list")
    items = {a.category: a for a in tree.allocation if a.item.file == p.file}
    if "extensions" not in items or "future" not in items:
        raise AnchorError(f"{p.file}: anchor not found: the feature-bit allocation list")
    ext_text, fut_text = items["extensions"].text, items["future"].text
    if p.anchor_kind == "item" and _norm(p.anchor) != _norm(ext_text):
        raise AnchorError(f"{p.file}: anchor drift: the extensions item reads '{_norm(ext_text)}', "
                          f"the placement expects '{p.anchor}'")
    ext, fut = parse_bit_ranges(ext_text), parse_bit_ranges(fut_text)
    if f.bit in ext:
        return []          # already allocated to extensions: nothing to move
    if f.bit not in fut.bits:
        raise AnchorError(f"{p.file}: bit {f.bit} is not in the 'future extensions' item "
                          f"('{_norm(fut_text)}') of this tree")
    return [Edit(p.file, AllocationItem("extensions"), format_bit_ranges(ext.with_bit(f.bit)),
                 area_of(p.file), "replace"),
            Edit(p.file, AllocationItem("future"), format_bit_ranges(fut.without(f.bit)),
                 area_of(p.file), "replace")]


_ITEM_NAME_BIT = re.compile(r"^\s*([A-Z0-9_]+)\s*\(\s*(\d+)\s*\)\s*$")


def _feature_edits(m: Module, tree: SpecTree, p: Placement, idx: RefIndex) -> list[Edit]:
    f = _feature(m, p.target, p)
    if f.bit is None:
        raise PlacementError(f"{_where(p)}feature {f.name} has no bit")
    scope = "device-independent" if f.scope == DEVICE_INDEPENDENT else f.scope
    taken = [d for d in tree.features if d.bit == f.bit and d.scope == scope and not d.legacy]
    if taken:
        raise AnchorError(f"{p.file}: bit {f.bit} is already defined upstream as {taken[0].name}")
    if p.anchor_kind == "item":
        # The author's anchor names the item the new one follows; it must
        # still be there (anchor drift), and numeric order decides the place.
        m_ = _ITEM_NAME_BIT.match(p.anchor)
        if m_:
            found = [d for d in tree.features if d.bit == int(m_.group(2)) and d.scope == scope
                     and d.name == m_.group(1) and d.item.file == p.file]
            if not found:
                raise AnchorError(f"{p.file}: anchor not found: \\item[{p.anchor}] "
                                  "in the Reserved Feature Bits list")
    # A blank line before the new item, as between most upstream items.
    return [Edit(p.file, FeatureSlot(f.bit, scope), "\n" + feature_item(f, idx), area_of(p.file))]


def _unsupported_edits(m: Module, tree: SpecTree, p: Placement) -> list[Edit]:
    name, _, transport = p.target.partition(" on ")
    _feature(m, name, p)
    if p.anchor_kind == "item":
        src = tree.sources.get(p.file)
        for form in (f"\\item {p.anchor}", f"\\item[{p.anchor}]"):
            # The item must be exactly this name: VIRTIO_F_RING_RESET must not
            # match a later VIRTIO_F_RING_RESET_V2.
            if src is not None and re.search(re.escape(form) + r"(?![A-Za-z0-9_])", src.text):
                where = _innermost_section_label(tree, p.file, form, p)
                return [Edit(p.file, LineAfter(form, **where), reserved_item(name), area_of(p.file))]
        raise AnchorError(f"{p.file}: anchor not found: \\item {p.anchor}")
    anchor, action = _point(tree, p)
    return [Edit(p.file, anchor, reserved_item(name), area_of(p.file), action)]


def placement_edits(m: Module, tree: SpecTree, p: Placement, idx: RefIndex) -> list[Edit]:
    """The edits of one placement line (PlacementError, AnchorError or LatexError if none)."""
    return _placement_edits(m, tree, p, idx)


def _placement_edits(m: Module, tree: SpecTree, p: Placement, idx: RefIndex) -> list[Edit]:
    kind = p.part_kind
    if kind == "allocation":
        return _allocation_edits(m, tree, p)
    if kind == "feature":
        return _feature_edits(m, tree, p, idx)
    if kind == "unsupported":
        return _unsupported_edits(m, tree, p)
    if kind == "section":
        sec = _section(m, p.target, p)
        anchor, action = _point(tree, p)
        body = section_latex(sec, m, idx)
        text = body + "\n" if action == "before" else "\n" + body
        return [Edit(p.file, anchor, text, area_of(p.file), action)]
    if kind == "block":
        label = f"{p.role}normative:{p.target}"
        blocks = [b for b in m.blocks if b.label == label]
        if not blocks:
            raise PlacementError(f"{_where(p)}placement names {label}, which the module does not extend")
        anchor, action = _point(tree, p)
        return [Edit(p.file, anchor, "".join(block_additions(b, idx) for b in blocks),
                     area_of(p.file), action)]
    if kind == "constant":
        consts = [c for c in m.constants if c.name == p.target]
        if not consts:
            raise PlacementError(f"{_where(p)}placement names constant {p.target}, which the module "
                                 "does not define")
        anchor, action = _point(tree, p)
        return [Edit(p.file, anchor, constant_define(consts[0]), area_of(p.file), action)]
    raise PlacementError(f"{_where(p)}unknown placement part '{kind}'")


# -- amendments and bibliography entries -----------------------------------------------------

INTRODUCTION_FILE = "introduction.tex"
REFERENCE_TABLES = {True: "Normative References", False: "Non-Normative References"}


def amendment_edits(m: Module, tree: SpecTree, idx: RefIndex) -> list[Edit]:
    """Each amendment replaces the passage it changes with the amended wording."""
    out = []
    for a in m.amendments:
        try:
            applied = apply_amendment(tree, a, idx)
        except AmendError as exc:
            more = "; candidates: " + " | ".join(exc.candidates) if exc.candidates else ""
            raise PlacementError(f"{exc}{more}") from None
        p = applied.passage
        out.append(Edit(p.file, Located(p.start, p.end, f"the {a.unit} at {p.pos} ({a.key})"),
                        applied.new_latex, area_of(p.file), "replace"))
    return out


def _table_end(tree: SpecTree, title: str) -> int:
    """Where a new row goes: before the \\end{longtable} of the section titled `title`."""
    src = tree.sources.get(INTRODUCTION_FILE)
    secs = [s for s in tree.sections if s.file == INTRODUCTION_FILE and s.title == title]
    if src is None or len(secs) != 1:
        raise AnchorError(f"{INTRODUCTION_FILE}: anchor not found: the reference table of "
                          f"section '{title}'")
    sec = secs[0]
    end = src.masked.find("\\end{longtable}", sec.body_offset, sec.end_offset)
    if end < 0:
        raise AnchorError(f"{INTRODUCTION_FILE}: anchor not found: the longtable of '{title}'")
    return src.text.rfind("\n", 0, end) + 1


def reference_edits(m: Module, tree: SpecTree, idx: RefIndex) -> list[Edit]:
    out = []
    for r in m.references:
        title = REFERENCE_TABLES[r.normative]
        at = _table_end(tree, title)
        out.append(Edit(INTRODUCTION_FILE, Located(at, at, f"the end of the '{title}' table"),
                        reference_row(r, idx), area_of(INTRODUCTION_FILE), "before"))
    return out


# -- the whole module -------------------------------------------------------------------------

def module_edits(m: Module, tree: SpecTree) -> list[Edit]:
    """All edits a proposal makes to ``tree``, in placement order.

    A feature that a transport with a "Features reserved for future use"
    list cannot offer gets its entry there even if the placement does not
    say so; conformance entries go at the end of their clause's list."""
    if m.kind != "proposal":
        raise PlacementError(f"{m.file}: module {m.name} is a {m.kind}, not a proposal: "
                             "it has no patch")
    if not m.has_placement and needs_placement(m):
        raise PlacementError(f"{m.file}: module {m.name} has no placement block: "
                             "say where each part lands upstream")
    idx = RefIndex.of(m)
    try:
        edits: list[Edit] = []
        for p in m.placements:
            edits += _placement_edits(m, tree, p, idx)
        placed = {p.target for p in m.placements if p.part_kind == "unsupported"}
        for f in m.features:
            for t in f.unsupported:
                if t in TRANSPORT_FILES and f"{f.name} on {t}" not in placed:
                    file = TRANSPORT_FILES[t]
                    edits.append(Edit(file, ListEnd(title=RESERVED_TITLE), reserved_item(f.name),
                                      area_of(file)))
        for e in m.conformance:
            edits.append(Edit(CONFORMANCE_FILE, ListEnd(label="sec:" + e.clause),
                              conformance_item(e), "conformance"))
        edits += amendment_edits(m, tree, idx)
        edits += reference_edits(m, tree, idx)
    except LatexError as exc:
        raise PlacementError(str(exc)) from None
    return edits
