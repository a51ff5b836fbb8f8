"""The typed model of a vspec module: what the parser builds and every
emitter and check reads.

All classes are frozen dataclasses holding tuples, so a parsed module can be
shared between emitters without defensive copies.  Every construct carries
the SourcePos it came from, so any later stage can point a diagnostic at
the author's text.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Iterator, Union

# RFC 2119 keywords a normative statement may carry, strongest first.
KEYWORDS = ("MUST NOT", "MUST", "SHOULD NOT", "SHOULD", "MAY")

# Result classes of a conformance check (test-vector style).
RESULTS = ("valid", "invalid", "acceptable")

# Reference kinds usable in prose as @kind(target).
REF_KINDS = ("feature", "field", "section", "req", "cite")

# Units of upstream text an amendment can change in place.
AMEND_UNITS = ("paragraph", "item", "statement")

DEVICE_INDEPENDENT = "device-independent"

FIELD_SIZES = {"u8": 1, "le16": 2, "le32": 4, "le64": 8}


@dataclass(frozen=True, order=True)
class SourcePos:
    file: str
    line: int
    col: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.col}"


# ---- prose ---------------------------------------------------------------

@dataclass(frozen=True)
class Text:
    """Literal prose text, whitespace already collapsed to single spaces."""
    text: str


@dataclass(frozen=True)
class Ref:
    """An inline reference: kind is one of REF_KINDS.

    target is a feature name, a field (``struct.field`` or a bare field
    name), a section title path (``A / B / C``, without ``sec:``), or a
    requirement id (or one of its aliases).
    """
    kind: str
    target: str
    pos: SourcePos


Piece = Union[Text, Ref]


@dataclass(frozen=True)
class Word:
    """A word the checks care about, found in the raw prose with its position:
    an RFC 2119 keyword (or a lower-case slip of one) or a feature name."""
    text: str
    pos: SourcePos


@dataclass(frozen=True)
class Prose:
    pieces: tuple[Piece, ...]
    pos: SourcePos
    words: tuple[Word, ...] = ()

    def refs(self) -> tuple[Ref, ...]:
        return tuple(p for p in self.pieces if isinstance(p, Ref))

    def plain(self) -> str:
        """The text with each reference replaced by its target."""
        return "".join(p.text if isinstance(p, Text) else p.target for p in self.pieces)


# ---- features, constants, structures ---------------------------------------

@dataclass(frozen=True)
class Feature:
    name: str
    bit: int | None
    scope: str                      # DEVICE_INDEPENDENT or a device type (blk, net, entropy, ...)
    prose: tuple[Prose, ...]
    requires: tuple[str, ...] = ()
    excludes: tuple[str, ...] = ()
    unsupported: tuple[str, ...] = ()   # transports that cannot offer it: pci, mmio, ccw
    experimental: bool = False
    pos: SourcePos | None = None
    bit_pos: SourcePos | None = None    # where the bit number is written


@dataclass(frozen=True)
class Constant:
    """A named value in a numbering space (group), e.g. a PCI cfg_type."""
    name: str
    value: int
    group: str | None
    prose: tuple[Prose, ...]
    pos: SourcePos | None = None


@dataclass(frozen=True)
class Field:
    name: str
    type: str                       # u8 le16 le32 le64 (element type for arrays)
    count: int | None               # None for a scalar, N for an array type name[N]
    reserved: bool
    offset: int                     # byte offset (explicit or computed)
    offset_explicit: bool
    access: str | None              # read-only, write-only, read-write (registers)
    prose: Prose | None
    pos: SourcePos | None = None

    @property
    def elem_size(self) -> int:
        return FIELD_SIZES[self.type]

    @property
    def size(self) -> int:
        return self.elem_size * (self.count if self.count is not None else 1)

    @property
    def kind(self) -> str:
        """scalar, array or reserved."""
        if self.reserved:
            return "reserved"
        return "array" if self.count is not None else "scalar"

    @property
    def end(self) -> int:
        return self.offset + self.size


@dataclass(frozen=True)
class Struct:
    name: str
    role: str                       # "structure" or "registers"
    fields: tuple[Field, ...]
    declared_size: int | None
    prose: tuple[Prose, ...] = ()
    pos: SourcePos | None = None

    @property
    def size(self) -> int:
        return max((f.end for f in self.fields), default=0)

    def field(self, name: str) -> Field | None:
        for f in self.fields:
            if f.name == name:
                return f
        return None


@dataclass(frozen=True)
class FieldFill:
    """What a module's use of a reused upstream structure puts in one of its fields."""
    name: str
    prose: Prose
    pos: SourcePos | None = None


@dataclass(frozen=True)
class ReusedStruct:
    """An upstream structure used as it is (`reuse struct NAME { field F "..." }`).

    The layout stays upstream; the module only says which fields its use
    fills in and with what, so it never redefines what the tree has."""
    name: str
    fills: tuple[FieldFill, ...]
    prose: tuple[Prose, ...] = ()
    pos: SourcePos | None = None

    def fill(self, name: str) -> FieldFill | None:
        for f in self.fills:
            if f.name == name:
                return f
        return None


@dataclass(frozen=True)
class Reference:
    """A bibliography entry for introduction.tex's reference tables, cited as @cite(NAME)."""
    name: str                       # the key: [NAME] in the table, label intro:NAME
    normative: bool
    text: Prose | None
    url: str | None
    pos: SourcePos | None = None

    @property
    def label(self) -> str:
        return reference_label(self.name)


def reference_label(name: str) -> str:
    """The intro: label of a bibliography entry (upstream writes RFC keys in lower case)."""
    return "intro:" + (name.lower() if re.fullmatch(r"RFC\d+", name) else name)


# ---- conformance checks ----------------------------------------------------

@dataclass(frozen=True)
class Arg:
    """One step argument: ``name=value`` or a positional ``value``."""
    name: str | None
    value: str
    pos: SourcePos | None = None


@dataclass(frozen=True)
class Step:
    verb: str
    kind: str                       # precondition, action or expectation
    args: tuple[Arg, ...]
    pos: SourcePos | None = None

    def arg(self, name: str) -> str | None:
        for a in self.args:
            if a.name == name:
                return a.value
        return None

    def positional(self) -> tuple[str, ...]:
        return tuple(a.value for a in self.args if a.name is None)


@dataclass(frozen=True)
class Check:
    id: str                         # "<statement id>/<name>", unique in a spec
    name: str
    statement_id: str
    result: str                     # one of RESULTS
    comment: str | None
    preconditions: tuple[Step, ...]
    steps: tuple[Step, ...]         # actions and expectations, in order
    pos: SourcePos | None = None

    @property
    def actions(self) -> tuple[Step, ...]:
        return tuple(s for s in self.steps if s.kind == "action")

    @property
    def expectations(self) -> tuple[Step, ...]:
        return tuple(s for s in self.steps if s.kind == "expectation")


# ---- normative text ----------------------------------------------------------

@dataclass(frozen=True)
class CiteRef:
    """Where a cited upstream statement is: its normative block's label and
    either a short quoted fragment of it or its number among the block's
    keyword statements.  The wording stays upstream."""
    label: str                      # drivernormative:... or devicenormative:...
    at: str | None                  # the fragment, whitespace normalised
    index: int | None               # 1-based number among the block's keyword statements
    where_pos: SourcePos | None = None
    at_pos: SourcePos | None = None
    upstream: str | None = None     # fingerprint of the reviewed wording (from the id registry)

    @property
    def locator(self) -> str:
        """How the citation picks its statement, as shown without a tree."""
        return f"statement {self.index}" if self.index is not None else f"the statement at '{self.at}'"


@dataclass(frozen=True)
class Statement:
    id: str
    keyword: str | None             # one of KEYWORDS; None when none could be found
    keyword_declared: bool          # written after the id, not inferred from the text
    condition: Prose | None
    text: Prose
    fingerprint: str                # short hash of normalised keyword, condition and text
    aliases: tuple[str, ...]
    checks: tuple[Check, ...]
    untestable: Prose | None
    role: str                       # driver or device
    block_path: str
    pos: SourcePos | None = None
    cites: CiteRef | None = None    # a cited upstream statement: no text of its own


@dataclass(frozen=True)
class NormativeBlock:
    role: str                       # driver or device
    title: str
    path: str                       # title path, "A / B / C"
    statements: tuple[Statement, ...]
    # standalone blocks sit at module top level: in a baseline they restate
    # the upstream block with this path, in a proposal they add statements
    # to that existing upstream block.  Blocks inside a section are new.
    standalone: bool
    conformance: tuple[str, ...] = ()   # clause paths listing this block (from placement)
    pos: SourcePos | None = None

    @property
    def label(self) -> str:
        return f"{self.role}normative:{self.path}"


@dataclass(frozen=True)
class Paragraph:
    prose: Prose


@dataclass(frozen=True)
class Note:
    prose: Prose


@dataclass(frozen=True)
class StructRef:
    """Show a declared structure's listing and field list at this point."""
    name: str
    pos: SourcePos | None = None


@dataclass(frozen=True)
class Section:
    title: str
    path: tuple[str, ...]           # full title path, upstream parents included
    items: tuple["SectionItem", ...]
    parent_given: bool              # written with `in "<parent path>"`
    pos: SourcePos | None = None

    @property
    def title_path(self) -> str:
        return " / ".join(self.path)

    @property
    def label(self) -> str:
        return "sec:" + self.title_path

    def walk(self) -> Iterator["Section"]:
        yield self
        for item in self.items:
            if isinstance(item, Section):
                yield from item.walk()

    def blocks(self) -> Iterator[NormativeBlock]:
        for item in self.items:
            if isinstance(item, NormativeBlock):
                yield item
            elif isinstance(item, Section):
                yield from item.blocks()


SectionItem = Union[Paragraph, Note, StructRef, Section, NormativeBlock]


# ---- amendments of upstream text ---------------------------------------------------

@dataclass(frozen=True)
class TextEdit:
    """One change inside an amended unit: op is replace, insert-before,
    insert-after or delete; `fragment` is the short quoted text it locates by
    (whitespace normalised); `new` the module's own words (None for delete)."""
    op: str
    fragment: str
    new: Prose | None
    pos: SourcePos | None = None


@dataclass(frozen=True)
class Amendment:
    """A change to existing upstream text in place.

    unit: paragraph, item or statement (AMEND_UNITS); where: the label
    (``sec:...``, ``drivernormative:...``, ``devicenormative:...``) or title
    path of the section or block that holds it; at: a short fragment of the
    unit that picks it out.  The rest of the upstream wording is read from
    the tree, never copied into the module.  An amended statement carries a
    Statement (id, keyword, fingerprint, checks) like a new one."""
    unit: str
    where: str
    at: str
    edits: tuple[TextEdit, ...]
    statement: "Statement | None" = None
    pos: SourcePos | None = None
    where_pos: SourcePos | None = None
    at_pos: SourcePos | None = None

    @property
    def label(self) -> str:
        """The upstream label of the section or block that holds the unit."""
        if self.where.startswith(("sec:", "drivernormative:", "devicenormative:")):
            return self.where
        return "sec:" + self.where

    @property
    def key(self) -> str:
        """A name for the amendment in docs and diagnostics."""
        return self.statement.id if self.statement else f"{self.unit} at '{self.at}' in {self.where}"


# ---- placement -------------------------------------------------------------------

@dataclass(frozen=True)
class Placement:
    """Where one part of a proposal lands in the upstream tree.

    part_kind: feature (the Reserved Feature Bits item), allocation (the
    feature-bit allocation list update), section, constant, block (a
    standalone normative block extending an upstream one), unsupported
    (a transport's "Features reserved for future use" list).
    target: the part's name, the section's or block's title path, or for
    unsupported "<FEATURE> on <transport>".
    position: before, after or end-of; anchor_kind: label, item or text.
    """
    part_kind: str
    target: str
    file: str
    position: str
    anchor_kind: str
    anchor: str
    role: str | None = None         # for part_kind == "block"
    pos: SourcePos | None = None


@dataclass(frozen=True)
class ConformanceEntry:
    """A normative block listed in a conformance clause."""
    role: str
    block_path: str
    clause: str                     # clause title path, e.g. "Conformance / Driver Conformance"
    pos: SourcePos | None = None

    @property
    def block_label(self) -> str:
        return f"{self.role}normative:{self.block_path}"


# ---- module -------------------------------------------------------------------------

@dataclass(frozen=True)
class Module:
    name: str
    kind: str                       # proposal or baseline ("" when missing or unknown: an error)
    title: str | None
    base: str | None                # e.g. virtio-v1.4-cs01
    subject: str | None             # commit subject prefix, e.g. "content"
    fixes: str | None               # Fixes: URL
    prose: tuple[Prose, ...]
    features: tuple[Feature, ...]
    constants: tuple[Constant, ...]
    structs: tuple[Struct, ...]
    sections: tuple[Section, ...]   # top-level sections
    blocks: tuple[NormativeBlock, ...]  # standalone normative blocks
    placements: tuple[Placement, ...]
    conformance: tuple[ConformanceEntry, ...]
    has_placement: bool
    file: str
    pos: SourcePos | None = None
    amendments: tuple[Amendment, ...] = ()
    reused: tuple[ReusedStruct, ...] = ()
    references: tuple[Reference, ...] = ()
    series: SeriesProse | None = None   # the `series { ... }` block, if any
    citations: tuple[Statement, ...] = ()   # statements that cite upstream ones (st.cites set)

    def all_sections(self) -> Iterator[Section]:
        for s in self.sections:
            yield from s.walk()

    def all_blocks(self) -> Iterator[NormativeBlock]:
        for s in self.sections:
            yield from s.blocks()
        yield from self.blocks

    def all_statements(self) -> Iterator[Statement]:
        """New statements, then amended upstream ones, then cited ones."""
        for b in self.all_blocks():
            yield from b.statements
        for a in self.amendments:
            if a.statement is not None:
                yield a.statement
        yield from self.citations

    def all_checks(self) -> Iterator[Check]:
        for st in self.all_statements():
            yield from st.checks

    def struct(self, name: str) -> Struct | None:
        for s in self.structs:
            if s.name == name:
                return s
        return None

    def reused_struct(self, name: str) -> ReusedStruct | None:
        for s in self.reused:
            if s.name == name:
                return s
        return None

# ---- the words around a patch series -----------------------------------------------

@dataclass(frozen=True)
class SeriesLink:
    """A reference the cover letter lists: `link NAME "URL or citation"`."""
    name: str
    target: str
    pos: SourcePos | None = None


@dataclass(frozen=True)
class SeriesProse:
    """The author's words for `specc patch`: the cover letter, why each patch
    area changes (its commit body), a changelog per version and references."""
    cover: tuple[Prose, ...] = ()
    why: tuple[tuple[str, tuple[Prose, ...]], ...] = ()        # (area, paragraphs)
    subjects: tuple[tuple[str, str], ...] = ()                 # (area, commit subject)
    changelog: tuple[tuple[int, tuple[Prose, ...]], ...] = ()  # (version, paragraphs)
    links: tuple[SeriesLink, ...] = ()
    pos: SourcePos | None = None

    def subject_for(self, area: str) -> str | None:
        return dict(self.subjects).get(area)

    def why_for(self, area: str) -> tuple[Prose, ...]:
        for a, paras in self.why:
            if a == area:
                return paras
        return ()

