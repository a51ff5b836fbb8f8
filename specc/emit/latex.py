"""LaTeX in the house style of the OASIS virtio specification.

Pure functions from model parts to LaTeX text. The conventions copied from
the upstream tree (v1.4-cs01) are facts, not text:

* feature bits are ``\\item[VIRTIO_F_NAME(N)]`` entries of a description list;
* sections carry ``\\label{sec:<title path>}``; normative blocks are
  ``\\drivernormative{<sectioning command>}{<Title>}{<Path>}`` (and device),
  one sectioning level below their section;
* field names are ``\\field{name}``; a section reference is
  ``\\ref{sec:P}~\\nameref{sec:P}``;
* structures are ``lstlisting`` blocks with u8/le16/le32/le64 fields,
  followed by a description list of the fields;
* conformance clauses list ``\\item \\ref{drivernormative:<Path>}``.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

from specc.emit.escape import latex_item_label, latex_label_ok, latex_text, listing_comment
from specc.model import (Constant, ConformanceEntry, Feature, Module, NormativeBlock, Note,
                         Paragraph, Prose, Ref, Reference, ReusedStruct, Section, Statement,
                         Struct, StructRef, Text, reference_label)
from specc.prose import with_condition

SECTIONING = ("chapter", "section", "subsection", "subsubsection", "paragraph", "subparagraph")
WIDTH = 72
LISTING_INDENT = " " * 8


class LatexError(ValueError):
    """The model holds something that cannot be written as upstream LaTeX."""


@dataclass
class RefIndex:
    """What inline references resolve against: the module's own parts."""
    statements: dict[str, Statement] = field(default_factory=dict)   # ids and aliases
    structs: set[str] = field(default_factory=set)
    references: dict[str, Reference] = field(default_factory=dict)

    @classmethod
    def of(cls, *modules: Module) -> "RefIndex":
        idx = cls()
        for m in modules:
            for st in m.all_statements():
                idx.statements[st.id] = st
                for a in st.aliases:
                    idx.statements[a] = st
            idx.structs.update(s.name for s in m.structs)
            idx.structs.update(s.name for s in m.reused)
            idx.references.update((r.name, r) for r in m.references)
        return idx


# -- labels and references ----------------------------------------------------

def checked_label(label: str) -> str:
    if not latex_label_ok(label):
        raise LatexError(f"label {label!r} holds a character that cannot appear in \\label{{}}")
    return label


def section_ref(path: str) -> str:
    label = checked_label(f"sec:{path}")
    return f"\\ref{{{label}}}~\\nameref{{{label}}}"


def field_name(target: str, idx: RefIndex) -> str:
    """A field reference as the reader sees it: ``struct.field`` loses the struct."""
    head, dot, rest = target.partition(".")
    if dot and head in idx.structs:
        return rest
    return target


_QUOTED = re.compile(r'"([^"\n]*)"')


def _text(text: str) -> str:
    # Upstream prose uses TeX quotes (``virtio-mmio''), never straight ones.
    return _QUOTED.sub(lambda m: f"``{m.group(1)}''", latex_text(text))


def prose(p: Prose, idx: RefIndex) -> str:
    """One paragraph of prose, references written the upstream way (unwrapped)."""
    out: list[str] = []
    for piece in p.pieces:
        if isinstance(piece, Text):
            out.append(_text(piece.text))
        elif isinstance(piece, Ref):
            out.append(_ref(piece, idx))
    return "".join(out)


def _ref(r: Ref, idx: RefIndex) -> str:
    if r.kind == "feature":
        return latex_text(r.target)          # feature names are typed bare upstream
    if r.kind == "field":
        return f"\\field{{{latex_text(field_name(r.target, idx))}}}"
    if r.kind == "section":
        return section_ref(r.target)
    if r.kind == "req":
        st = idx.statements.get(r.target)
        if st is None:
            raise LatexError(f"{r.pos}: reference to unknown requirement '{r.target}'")
        return f"\\ref{{{checked_label(f'{st.role}normative:{st.block_path}')}}}"
    if r.kind == "cite":
        label = checked_label(reference_label(r.target))
        return f"\\hyperref[{label}]{{[{latex_text(r.target)}]}}"
    raise LatexError(f"{r.pos}: unknown reference kind '{r.kind}'")


# -- layout -------------------------------------------------------------------

def _words(text: str) -> list[str]:
    """Split at spaces outside braces, so a \\ref{label with spaces} stays whole."""
    words: list[str] = []
    cur: list[str] = []
    depth = 0
    for ch in text:
        if ch == "{":
            depth += 1
        elif ch == "}":
            depth = max(0, depth - 1)
        if ch == " " and depth == 0:
            if cur:
                words.append("".join(cur))
                cur = []
            continue
        cur.append(ch)
    if cur:
        words.append("".join(cur))
    return words


def wrap(text: str, indent: str = "", width: int = WIDTH, first: str | None = None) -> str:
    """Fill a paragraph to ``width`` columns; an over-long word gets a line of its own."""
    lines: list[str] = []
    line = first if first is not None else indent
    fresh = True
    for w in _words(text):
        if not fresh and len(line) + 1 + len(w) > width:
            lines.append(line)
            line, fresh = indent, True
        line = line + w if fresh else f"{line} {w}"
        fresh = False
    lines.append(line)
    return "\n".join(lines)


def sectioning(depth: int) -> str:
    """The command for a heading whose title path has ``depth`` parts."""
    if not 1 <= depth <= len(SECTIONING):
        raise LatexError(f"a title path of {depth} parts has no LaTeX sectioning command")
    return "\\" + SECTIONING[depth - 1]


# -- features and constants -----------------------------------------------------

def feature_item(f: Feature, idx: RefIndex) -> str:
    """The ``\\item`` for a feature in the Reserved Feature Bits (or device) list."""
    head = f"  \\item[{latex_item_label(f.name)}({f.bit})] "
    paras = [prose(p, idx) for p in f.prose] or [""]
    paras += dependency_sentences(f)
    out = [wrap(paras[0], indent="  ", first=head.rstrip() + " ")]
    for p in paras[1:]:
        out.append(wrap(p, indent="  "))
    return "\n\n".join(out) + "\n"


def _and(names: tuple[str, ...]) -> str:
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def dependency_sentences(f: Feature) -> list[str]:
    """`requires` and `excludes` in words, so no declaration is dropped silently."""
    out = []
    if f.requires:
        out.append(latex_text(f"{f.name} requires {_and(f.requires)}."))
    if f.excludes:
        out.append(latex_text(f"{f.name} cannot be negotiated together with "
                              f"{_and(f.excludes)}."))
    return out


def reference_row(r: Reference, idx: RefIndex) -> str:
    """A row of introduction.tex's reference table: label, [KEY], the entry and its URL."""
    label = checked_label(r.label)
    text = prose(r.text, idx) if r.text is not None else ""
    if r.url:
        text += f" \\newline\\url{{{r.url}}}"
    head = f"\t\\phantomsection\\label{{{label}}}\\textbf{{[{latex_text(r.name)}]}} &"
    return head + "\n" + wrap(text, indent="\t") + "\\\\\n"


def reserved_item(feature_name: str) -> str:
    """An entry of a transport's "Features reserved for future use" itemize."""
    return f"\\item {latex_text(feature_name)}\n"


def constant_define(c: Constant) -> str:
    """``#define`` lines for a listing of values such as the PCI cfg_type table."""
    lines = []
    if c.prose:
        try:
            lines.append(listing_comment(" ".join(p.plain() for p in c.prose)))
        except ValueError as exc:
            raise LatexError(f"{c.pos}: constant {c.name}: {exc}") from None
    lines.append(f"#define {c.name:<32} {c.value}")
    return "\n".join(lines) + "\n"


# -- structures -------------------------------------------------------------------

def struct_listing(s: Struct) -> str:
    lines = [f"struct {s.name} {{"]
    for f in s.fields:
        count = f"[{f.count}]" if f.count is not None else ""
        lines.append(f"{LISTING_INDENT}{f.type} {f.name}{count};")
    lines.append("};")
    return "\\begin{lstlisting}\n" + "\n".join(lines) + "\n\\end{lstlisting}\n"


def struct_fields(s: Struct, idx: RefIndex) -> str:
    items = []
    for f in s.fields:
        body = prose(f.prose, idx) if f.prose else ""
        head = f"\\item[\\field{{{latex_text(f.name)}}}]"
        items.append(f"{head}\n{wrap(body, indent='        ')}" if body else head)
    return "\\begin{description}\n" + "\n\n".join(items) + "\n\\end{description}\n"


def reused_struct_latex(s: ReusedStruct, idx: RefIndex) -> str:
    """An upstream structure used as it is: the module's prose, then what it puts in
    each field it fills (the listing stays upstream)."""
    parts = [wrap(prose(p, idx)) + "\n" for p in s.prose]
    items = [f"\\item[\\field{{{latex_text(f.name)}}}]\n{wrap(prose(f.prose, idx), indent='        ')}"
             for f in s.fills]
    if items:
        parts.append("\\begin{description}\n" + "\n\n".join(items) + "\n\\end{description}\n")
    return "\n".join(parts)


def struct_latex(s: Struct, idx: RefIndex) -> str:
    """The listing, the structure's own prose, then the field descriptions."""
    parts = [struct_listing(s)]
    parts += [wrap(prose(p, idx)) + "\n" for p in s.prose]
    parts.append(struct_fields(s, idx))
    return "\n".join(parts)


# -- normative text ---------------------------------------------------------------

def statement_latex(st: Statement, idx: RefIndex) -> str:
    return wrap(prose(with_condition(st.condition, st.text), idx)) + "\n"


def statements_latex(statements: tuple[Statement, ...], idx: RefIndex) -> str:
    return "\n".join(statement_latex(st, idx) for st in statements)


def block_heading(b: NormativeBlock, depth: int) -> str:
    """``\\drivernormative{\\cmd}{Title}{Path}`` for a block in a section of ``depth`` parts."""
    macro = {"driver": "drivernormative", "device": "devicenormative"}[b.role]
    path = checked_label(b.path)
    return f"\\{macro}{{{sectioning(depth + 1)}}}{{{latex_text(b.title)}}}{{{path}}}\n"


def block_latex(b: NormativeBlock, depth: int, idx: RefIndex) -> str:
    return block_heading(b, depth) + "\n" + statements_latex(b.statements, idx)


def block_additions(b: NormativeBlock, idx: RefIndex) -> str:
    """Statements appended to an existing upstream block: a blank line, then paragraphs."""
    return "\n" + statements_latex(b.statements, idx)


# -- sections ---------------------------------------------------------------------

def section_heading(sec: Section) -> str:
    label = checked_label(sec.label)
    return f"{sectioning(len(sec.path))}{{{latex_text(sec.title)}}}\\label{{{label}}}\n"


def section_latex(sec: Section, module: Module, idx: RefIndex) -> str:
    """A whole section: heading, prose, notes, structures, blocks, subsections."""
    parts = [section_heading(sec)]
    for item in sec.items:
        if isinstance(item, Paragraph):
            parts.append(wrap(prose(item.prose, idx)) + "\n")
        elif isinstance(item, Note):
            parts.append("\\begin{note}\n" + wrap(prose(item.prose, idx)) + "\n\\end{note}\n")
        elif isinstance(item, StructRef):
            s = module.struct(item.name)
            reused = module.reused_struct(item.name)
            if s is not None:
                parts.append(struct_latex(s, idx))
            elif reused is not None:
                parts.append(reused_struct_latex(reused, idx))
            else:
                raise LatexError(f"{item.pos}: 'show {item.name}': no such structure")
        elif isinstance(item, NormativeBlock):
            parts.append(block_latex(item, len(sec.path), idx))
        elif isinstance(item, Section):
            parts.append(section_latex(item, module, idx))
    return "\n".join(parts)


# -- conformance and allocation -------------------------------------------------------

def conformance_item(entry: ConformanceEntry) -> str:
    return f"\\item \\ref{{{checked_label(entry.block_label)}}}\n"


# -- a whole module, for review and golden files --------------------------------------

def module_latex(m: Module) -> str:
    """Every LaTeX fragment a module contributes, each under a comment naming it.

    This is what a reviewer reads before the patch series is cut; the series
    puts the same fragments at their placement anchors."""
    idx = RefIndex.of(m)
    out = [f"% specc: LaTeX fragments of module {m.name}\n"]
    for f in m.features:
        out.append(f"% feature {f.name} (Reserved Feature Bits list)\n" + feature_item(f, idx))
        for t in f.unsupported:
            out.append(f"% {f.name} is not offered on {t}: 'Features reserved for future use'\n"
                       + reserved_item(f.name))
    for c in m.constants:
        # the series puts these lines inside the tree's listing of values;
        # shown alone they sit in a listing of their own, so nothing in a
        # constant's comment is ever live LaTeX
        out.append(f"% constant {c.name}\n\\begin{{lstlisting}}\n" + constant_define(c)
                   + "\\end{lstlisting}\n")
    for sec in m.sections:
        out.append(f"% section {sec.title_path}\n" + section_latex(sec, m, idx))
    for b in m.blocks:
        out.append(f"% added to {b.label}\n" + block_additions(b, idx))
    for e in m.conformance:
        out.append(f"% conformance clause {e.clause}\n" + conformance_item(e))
    for r in m.references:
        out.append(f"% reference {r.name}\n" + reference_row(r, idx))
    for a in m.amendments:
        what = ", ".join(f"{e.op} '{e.fragment}'" for e in a.edits)
        out.append(f"% amends the {a.unit} at '{a.at}' in {a.label}: {what}\n")
    return "\n".join(out)
