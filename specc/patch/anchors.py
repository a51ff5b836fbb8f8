"""Anchors: named places in an upstream spec tree where a patch edits text.

An anchor says *what* it points at (an allocation-list item, the \\item for a
feature bit, the end of a section, the itemize of a section, a line of a
listing), never a line number; `resolve_anchor` finds it with the tree reader
(specc.upstream) in one file and returns a span of that file's text. A point
(an insertion place) is a span whose start equals its end.

Sections are named by label (`"sec:A / B"`, or the path without `sec:`) or,
within the edit's file, by plain title (`title="Features reserved for future use"`).
"""
from __future__ import annotations

from dataclasses import dataclass

from specc.upstream.passages import find_fragment, own_end as _body_end
from specc.upstream.tree import FeatureDef, Item, ListEnv, Section, SpecTree


class AnchorError(Exception):
    """An anchor that is not in the named file (message names file and anchor)."""


@dataclass(frozen=True)
class Span:
    start: int
    end: int


# -- helpers ----------------------------------------------------------------

def _line_start(text: str, i: int) -> int:
    return text.rfind("\n", 0, i) + 1


def _after_content(text: str, start: int, end: int) -> int:
    """The start of the line after the last non-blank line in text[start:end]."""
    j = end
    while j > start and text[j - 1] in " \t\r\n":
        j -= 1
    k = text.find("\n", j)
    return end if k < 0 or k >= end else k + 1


def _section_selector(label: str, title: str) -> str:
    if label:
        return f"section '{label if label.startswith('sec:') else 'sec:' + label}'"
    return f"section titled '{title}'"


def _find_section(tree: SpecTree, file: str, label: str, title: str, what: str) -> Section:
    if bool(label) == bool(title):
        raise AnchorError(f"{file}: anchor {what}: give exactly one of label= and title=")
    if label:
        sec = tree.section_by_label(label)
        if sec is None:
            raise AnchorError(f"{file}: anchor not found: {what} (no such label in the tree)")
    else:
        found = [s for s in tree.sections if s.file == file and s.title == title]
        if not found:
            raise AnchorError(f"{file}: anchor not found: {what} (no section with that title in {file})")
        if len(found) > 1:
            raise AnchorError(f"{file}: anchor {what} is ambiguous: {len(found)} sections have that title")
        sec = found[0]
    if sec.file != file:
        raise AnchorError(f"{file}: anchor not found: {what} (it is in {sec.file})")
    return sec


def _in_body(sec: Section, offset: int) -> bool:
    return sec.body_offset <= offset < _body_end(sec)


# -- the vocabulary ---------------------------------------------------------

@dataclass(frozen=True)
class AllocationItem:
    """The bit-range text of one item of the feature-bit allocation list.

    category: "device" (device-type bits), "extensions" (device-independent
    extension bits) or "future" (reserved for future extensions). The span is
    the text inside `\\item[...]`, so `replace` swaps only the ranges."""
    category: str

    def describe(self) -> str:
        return f"the bit ranges of the '{self.category}' item of the feature-bit allocation list"

    def resolve(self, tree: SpecTree, file: str) -> Span:
        for a in tree.allocation:
            if a.category == self.category and a.item.file == file and a.item.opt:
                return Span(*a.item.opt)
        raise AnchorError(f"{file}: anchor not found: {self.describe()}")


def _feature(tree: SpecTree, file: str, bit: int, scope: str, legacy: bool) -> list[FeatureDef]:
    return [f for f in tree.features
            if f.scope == scope and f.legacy == legacy and f.item.file == file and f.bit == bit]


def _feature_list(tree: SpecTree, file: str, scope: str, legacy: bool) -> ListEnv | None:
    """The description list that holds the (non-legacy) definitions of a scope."""
    for lst in tree.lists:
        if lst.file != file:
            continue
        ids = {id(it) for it in lst.items}
        if any(id(f.item) in ids and f.scope == scope and f.legacy == legacy for f in tree.features):
            return lst
    return None


@dataclass(frozen=True)
class FeatureItem:
    """The whole `\\item[NAME(bit)] ...` defining a feature bit (to insert after or before it)."""
    bit: int
    scope: str = "device-independent"
    legacy: bool = False

    def describe(self) -> str:
        where = "Reserved Feature Bits" if self.scope == "device-independent" else self.scope
        return f"the \\item for bit {self.bit} in the {where} description list"

    def resolve(self, tree: SpecTree, file: str) -> Span:
        found = _feature(tree, file, self.bit, self.scope, self.legacy)
        if not found:
            raise AnchorError(f"{file}: anchor not found: {self.describe()}")
        it = found[0].item
        text = tree.sources[file].text
        return Span(it.offset, _after_content(text, it.offset, it.end_offset))


@dataclass(frozen=True)
class FeatureSlot:
    """Where a new `\\item` for `bit` goes so the definitions stay in numeric order."""
    bit: int
    scope: str = "device-independent"

    def describe(self) -> str:
        where = "Reserved Feature Bits" if self.scope == "device-independent" else self.scope
        return f"the place for bit {self.bit} in the {where} description list"

    def resolve(self, tree: SpecTree, file: str) -> Span:
        lst = _feature_list(tree, file, self.scope, False)
        if lst is None:
            raise AnchorError(f"{file}: anchor not found: {self.describe()}")
        text = tree.sources[file].text
        feats = {id(f.item): f for f in tree.features}
        before = [feats[id(it)] for it in lst.items
                  if id(it) in feats and feats[id(it)].bit < self.bit]
        if before:
            it = before[-1].item
            p = _after_content(text, it.offset, it.end_offset)
        else:
            p = _line_start(text, lst.items[0].offset) if lst.items else \
                _line_start(text, lst.end_offset)
        return Span(p, p)


@dataclass(frozen=True)
class SectionStart:
    """Just before a section's heading line (to put a new sibling section in front of it)."""
    label: str = ""
    title: str = ""

    def describe(self) -> str:
        return f"the start of {_section_selector(self.label, self.title)}"

    def resolve(self, tree: SpecTree, file: str) -> Span:
        sec = _find_section(tree, file, self.label, self.title, self.describe())
        p = _line_start(tree.sources[file].text, sec.offset)
        return Span(p, p)


@dataclass(frozen=True)
class SectionEnd:
    """After all of a section's text, subsections included (a new last subsection goes here)."""
    label: str = ""
    title: str = ""

    def describe(self) -> str:
        return f"the end of {_section_selector(self.label, self.title)}"

    def resolve(self, tree: SpecTree, file: str) -> Span:
        sec = _find_section(tree, file, self.label, self.title, self.describe())
        text = tree.sources[file].text
        p = _after_content(text, sec.body_offset, sec.end_offset)
        return Span(p, p)


@dataclass(frozen=True)
class SectionBodyEnd:
    """After a section's own text, before its first subsection (a new paragraph goes here)."""
    label: str = ""
    title: str = ""

    def describe(self) -> str:
        return f"the end of the text of {_section_selector(self.label, self.title)} (before its subsections)"

    def resolve(self, tree: SpecTree, file: str) -> Span:
        sec = _find_section(tree, file, self.label, self.title, self.describe())
        text = tree.sources[file].text
        p = _after_content(text, sec.body_offset, _body_end(sec))
        return Span(p, p)


@dataclass(frozen=True)
class NormativeEnd:
    """After the text of a normative block, e.g. 'drivernormative:Reserved Feature Bits'."""
    label: str

    def describe(self) -> str:
        return f"the end of normative block '{self.label}'"

    def resolve(self, tree: SpecTree, file: str) -> Span:
        block = tree.block_by_label(self.label)
        if block is None:
            raise AnchorError(f"{file}: anchor not found: {self.describe()} (no such block)")
        sec = block.heading
        if sec.file != file:
            raise AnchorError(f"{file}: anchor not found: {self.describe()} (it is in {sec.file})")
        text = tree.sources[file].text
        p = _after_content(text, sec.body_offset, _body_end(sec))
        return Span(p, p)


@dataclass(frozen=True)
class ListEnd:
    """After the last \\item of the nth `env` list in a section's own text.

    "in the itemize of section 'Features reserved for future use' of
    transport-mmio.tex" is ListEnd(title="Features reserved for future use")
    with file transport-mmio.tex; a conformance clause's list is
    ListEnd(label="sec:Conformance / Driver Conformance")."""
    label: str = ""
    title: str = ""
    env: str = "itemize"
    nth: int = 1

    def describe(self) -> str:
        n = "" if self.nth == 1 else f" #{self.nth}"
        return f"the end of the {self.env}{n} of {_section_selector(self.label, self.title)}"

    def resolve(self, tree: SpecTree, file: str) -> Span:
        sec = _find_section(tree, file, self.label, self.title, self.describe())
        lists = [lst for lst in tree.lists if lst.file == file and lst.env == self.env
                 and lst.section is sec and _in_body(sec, lst.offset)]
        top = min((lst.depth for lst in lists), default=0)
        lists = [lst for lst in lists if lst.depth == top]
        if len(lists) < self.nth:
            raise AnchorError(f"{file}: anchor not found: {self.describe()} "
                              f"(the section has {len(lists)} such list(s))")
        lst = lists[self.nth - 1]
        text = tree.sources[file].text
        if lst.items:
            it: Item = lst.items[-1]
            p = _after_content(text, it.offset, it.end_offset)
        else:
            p = _line_start(text, lst.end_offset)
        return Span(p, p)


@dataclass(frozen=True)
class LineAfter:
    """After the one line of a section (subsections and listings included) that contains `contains`."""
    contains: str
    label: str = ""
    title: str = ""

    def describe(self) -> str:
        return f"the line containing '{self.contains}' in {_section_selector(self.label, self.title)}"

    def resolve(self, tree: SpecTree, file: str) -> Span:
        sec = _find_section(tree, file, self.label, self.title, self.describe())
        text = tree.sources[file].text
        hits = _occurrences(text, self.contains, sec.offset, sec.end_offset)
        _one(hits, file, self.describe())
        k = text.find("\n", hits[0])
        p = len(text) if k < 0 else k + 1
        return Span(p, p)


@dataclass(frozen=True)
class Text:
    """The one occurrence of an exact piece of text within a section (to replace it)."""
    old: str
    label: str = ""
    title: str = ""

    def describe(self) -> str:
        return f"the text '{self.old}' in {_section_selector(self.label, self.title)}"

    def resolve(self, tree: SpecTree, file: str) -> Span:
        sec = _find_section(tree, file, self.label, self.title, self.describe())
        text = tree.sources[file].text
        spans = find_fragment(text, self.old, sec.offset, sec.end_offset)
        _one([s for s, _ in spans], file, self.describe())
        return Span(*spans[0])


@dataclass(frozen=True)
class Labelled:
    """The whole section or normative block a label names, heading line included.

    `before` puts text in front of its heading line, `after` after its last
    non-blank line (for a section: subsections included; for a normative
    block: its text). The DSL's `before|after|end-of label "..."` map here
    (`end-of` is `after`)."""
    label: str

    def describe(self) -> str:
        return f"the part labelled '{self.label}'"

    def resolve(self, tree: SpecTree, file: str) -> Span:
        block = tree.block_by_label(self.label)
        if block is not None:
            sec, end = block.heading, _body_end(block.heading)
        else:
            sec = tree.section_by_label(self.label) if self.label.startswith("sec:") or \
                ":" not in self.label.split(" / ")[0] else None
            if sec is None:
                found = [lab for lab in tree.labels if lab.name == self.label]
                if not found or found[0].section is None:
                    raise AnchorError(f"{file}: anchor not found: {self.describe()} (no such label)")
                sec = found[0].section
            end = sec.end_offset
        if sec.file != file:
            raise AnchorError(f"{file}: anchor not found: {self.describe()} (it is in {sec.file})")
        text = tree.sources[file].text
        return Span(_line_start(text, sec.offset), _after_content(text, sec.body_offset, end))


@dataclass(frozen=True)
class ItemText:
    """The one `\\item` of a list in the file whose [label] reads `text`, or,
    for an item without [label], whose first line reads `text` (spaces
    normalised). Span: the whole item. The DSL's `item "..."` maps here."""
    text: str

    def describe(self) -> str:
        return f"the \\item '{self.text}'"

    def resolve(self, tree: SpecTree, file: str) -> Span:
        src = tree.sources[file]
        want = " ".join(self.text.split())
        hits: list[Item] = []
        for lst in tree.lists:
            if lst.file != file:
                continue
            for it in lst.items:
                if it.opt is not None:
                    got = src.text[it.opt[0]:it.opt[1]]
                else:
                    start = it.offset + len("\\item")
                    nl = src.masked.find("\n", start)
                    got = src.masked[start:nl if 0 <= nl < it.end_offset else it.end_offset]
                if " ".join(got.split()) == want:
                    hits.append(it)
        if not hits:
            raise AnchorError(f"{file}: anchor not found: {self.describe()}")
        if len(hits) > 1:
            raise AnchorError(f"{file}: anchor {self.describe()} is ambiguous ({len(hits)} items)")
        it = hits[0]
        return Span(it.offset, _after_content(src.text, it.offset, it.end_offset))


@dataclass(frozen=True)
class Line:
    """The one line (newline included) that contains `contains`, in the whole file or,
    with label=/title=, in one section. The DSL's `text "..."` maps here."""
    contains: str
    label: str = ""
    title: str = ""

    def describe(self) -> str:
        where = _section_selector(self.label, self.title) if (self.label or self.title) else "the file"
        return f"the line containing '{self.contains}' in {where}"

    def resolve(self, tree: SpecTree, file: str) -> Span:
        text = tree.sources[file].text
        if self.label or self.title:
            sec = _find_section(tree, file, self.label, self.title, self.describe())
            lo, hi = sec.offset, sec.end_offset
        else:
            lo, hi = 0, len(text)
        hits = _occurrences(text, self.contains, lo, hi)
        lines = sorted({_line_start(text, h) for h in hits})
        _one(lines, file, self.describe())
        k = text.find("\n", hits[0])
        return Span(lines[0], len(text) if k < 0 else k + 1)


def _occurrences(text: str, needle: str, start: int, end: int) -> list[int]:
    """Where `needle` starts in text[start:end], whitespace runs matching any whitespace."""
    return [s for s, _ in find_fragment(text, needle, start, end)]


def _one(hits: list[int], file: str, what: str) -> None:
    if not hits:
        raise AnchorError(f"{file}: anchor not found: {what}")
    if len(hits) > 1:
        raise AnchorError(f"{file}: anchor {what} is ambiguous ({len(hits)} occurrences)")


@dataclass(frozen=True)
class Located:
    """A span found beforehand by another reader of the tree (e.g. the passage an
    amendment changes, found by specc.upstream.passages); `what` describes it."""
    start: int
    end: int
    what: str

    def describe(self) -> str:
        return self.what

    def resolve(self, tree: SpecTree, file: str) -> Span:
        if not 0 <= self.start <= self.end <= len(tree.sources[file].text):
            raise AnchorError(f"{file}: anchor not found: {self.describe()}")
        return Span(self.start, self.end)


Anchor = (AllocationItem | FeatureItem | FeatureSlot | SectionStart | SectionEnd | SectionBodyEnd
          | NormativeEnd | ListEnd | LineAfter | Text | Labelled | ItemText | Line | Located)

ANCHOR_TYPES = (AllocationItem, FeatureItem, FeatureSlot, SectionStart, SectionEnd,
                SectionBodyEnd, NormativeEnd, ListEnd, LineAfter, Text, Labelled, ItemText, Line,
                Located)


def resolve_anchor(tree: SpecTree, file: str, anchor: Anchor) -> Span:
    """The span an anchor names in `file`; AnchorError naming file and anchor if absent."""
    if file not in tree.sources:
        raise AnchorError(f"{file}: anchor not found: {anchor.describe()} "
                          f"({file} is not read by the build)")
    return anchor.resolve(tree, file)
