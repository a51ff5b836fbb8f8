"""reStructuredText for a module: the page a spec author or implementer reads.

One page per module: header facts, overview prose, a feature table,
constants, structure tables, the specification text with every normative
statement in a box of its own (its id as a stable anchor, aliases too, the
RFC 2119 keyword highlighted, condition, checks or the reason it is
untestable) and, when a conformance report is given, each statement's
verdict beside it.

Only standard docutils constructs are used (``role`` directives for the
highlight classes, ``list-table``, ``container``, hyperlink targets), so the
.rst files stand on their own; `specc.emit.html` turns them into a site.

Anchors: a statement is reachable at ``#<make_id(id)>`` (docutils' id rule:
lower case, runs of other characters become ``-``), and so is each alias
(the HTML site adds the id as written, see `specc.emit.site`);
sections at ``#section-<path>``, features at ``#<make_id(name)>``,
structures at ``#structure-<name>``.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

from docutils.nodes import make_id

from specc.amend import AmendError, apply_amendment, word_diff
from specc.emit.escape import rst_block_safe, rst_name, rst_text
from specc.emit.latex import RefIndex
from specc.model import (Amendment, Check, Constant, Feature, Module, NormativeBlock, Note,
                         Paragraph, Prose, Ref, Reference, ReusedStruct, Section, Statement, Step,
                         Struct, StructRef, Text)
from specc.prose import with_condition
from specc.upstream.statements import CiteError, resolve as resolve_cited
from specc.upstream.tree import SpecTree

KEYWORD_RE = re.compile(r"\b(MUST NOT|SHOULD NOT|MUST|SHOULD|MAY|REQUIRED|RECOMMENDED|OPTIONAL)\b")
# Adornments by level; specc.limits caps section nesting well inside this.
HEADING_CHARS = "=-~^\"'`#*+:."
VERDICTS = ("PASS", "FAIL", "REJECT", "WEDGED", "SKIP")

# Characters after which inline markup may start, and before which it may
# end, without an escaped space (docutils' inline markup recognition rules,
# the ASCII part).
_OPEN_OK = set(" \t\n'\"([{<-/:")
_CLOSE_OK = set(" \t\n'\")]}>-/:.,;!?\\")


class RstError(ValueError):
    """The model holds something the RST emitter cannot write."""


def reference_target(name: str) -> str:
    return f"reference {name}"


def section_target(path: str) -> str:
    return f"section {path}"


def struct_target(name: str) -> str:
    return f"structure {name}"


def anchor(name: str) -> str:
    """The HTML id docutils gives a target of this name."""
    return make_id(name)


# -- what references can point at, across the pages of a site --------------------------

@dataclass
class SiteIndex:
    """Which page defines each feature, section, structure and statement."""
    features: dict[str, str] = field(default_factory=dict)      # name -> page
    sections: dict[str, str] = field(default_factory=dict)      # title path -> page
    statements: dict[str, tuple[str, Statement]] = field(default_factory=dict)  # id/alias -> page
    structs: dict[str, str] = field(default_factory=dict)
    references: dict[str, str] = field(default_factory=dict)    # name -> page

    @classmethod
    def of(cls, modules: list[Module]) -> "SiteIndex":
        idx = cls()
        for m in modules:
            for f in m.features:
                idx.features.setdefault(f.name, m.name)
            for s in m.all_sections():
                idx.sections.setdefault(s.title_path, m.name)
            for s in m.structs + m.reused:
                idx.structs.setdefault(s.name, m.name)
            for r in m.references:
                idx.references.setdefault(r.name, m.name)
            for st in m.all_statements():
                idx.statements.setdefault(st.id, (m.name, st))
                for a in st.aliases:
                    idx.statements.setdefault(a, (m.name, st))
        return idx


@dataclass(frozen=True)
class Verdict:
    """What a conformance report says about one requirement."""
    counts: tuple[tuple[str, int], ...]        # (verdict, number of tests), VERDICTS order
    # (device, its verdict, site page of its report) for each report read, latest per device
    devices: tuple[tuple[str, str, str], ...] = ()

    @property
    def overall(self) -> str:
        """The worst verdict: FAIL and WEDGED outrank PASS, REJECT, SKIP."""
        present = {v for v, n in self.counts if n}
        for v in ("FAIL", "WEDGED", "PASS", "REJECT", "SKIP"):
            if v in present:
                return v
        return "SKIP"


# -- inline text ---------------------------------------------------------------------------

def _link(text: str, target_page: str, name: str, page: str) -> str:
    if target_page == page:
        return f"`{_in_backquotes(text)} <{rst_name(name)}_>`__"
    return f"`{_in_backquotes(text)} <{target_page}.html#{anchor(name)}>`__"


def _target(name: str) -> str:
    """An explicit hyperlink target line for ``name``."""
    return f".. _`{rst_name(name)}`:\n"


def link_text(text: str) -> str:
    """Any text as the text of an RST hyperlink reference (`text <uri>`__)."""
    return _in_backquotes(" ".join(text.split()))


def _in_backquotes(text: str) -> str:
    # Inside `...` only backslash, backquote and angle brackets need care.
    return re.sub(r"([\\`<>])", r"\\\1", text)


def _join(parts: list[tuple[str, str]]) -> str:
    """Join escaped text ("t") and markup ("m") so every markup piece is recognised."""
    # Text is kept raw until here so the neighbours of markup can be seen.
    # One pass from the end finds each piece's next non-empty neighbour, so
    # the join stays linear in the number of pieces.
    following: list[tuple[str, str] | None] = [None] * len(parts)
    nxt: tuple[str, str] | None = None
    for i in range(len(parts) - 1, -1, -1):
        following[i] = nxt
        if parts[i][1]:
            nxt = parts[i]
    out: list[str] = []
    last = ""                              # the last character written so far
    for (kind, s), nxt in zip(parts, following):
        if kind == "t":
            piece = _escape_inline(s)
        else:
            piece = s if not last or last in _OPEN_OK else "\\ " + s
            if nxt and (nxt[0] == "m" or nxt[1][0] not in _CLOSE_OK):
                piece += "\\ "
        if piece:
            out.append(piece)
            last = piece[-1]
    return "".join(out)


def _escape_inline(s: str) -> str:
    # rst_text collapses whitespace; keep the single spaces at the ends that
    # separate this run from neighbouring markup.
    if not s:
        return ""
    lead = " " if s[0].isspace() else ""
    trail = " " if s[-1].isspace() and s.strip() else ""
    body = rst_text(s)
    return lead + body + trail if body else (" " if s.isspace() else "")


def prose(p: Prose, idx: SiteIndex, page: str, keywords: bool = False) -> str:
    """One paragraph as a single RST line, references linked where they resolve."""
    parts: list[tuple[str, str]] = []
    for piece in p.pieces:
        if isinstance(piece, Text):
            if keywords:
                for m_kind, s in _split_keywords(piece.text):
                    parts.append((m_kind, s))
            else:
                parts.append(("t", piece.text))
        elif isinstance(piece, Ref):
            parts.append(("m", _ref(piece, idx, page)))
    line = _join(parts)
    return rst_block_safe(line, markup_first=True)


def _split_keywords(text: str) -> list[tuple[str, str]]:
    out = []
    pos = 0
    for m in KEYWORD_RE.finditer(text):
        out.append(("t", text[pos:m.start()]))
        out.append(("m", f":rfc2119:`{m.group(1)}`"))
        pos = m.end()
    out.append(("t", text[pos:]))
    return out


def _ref(r: Ref, idx: SiteIndex, page: str) -> str:
    if r.kind == "feature":
        if r.target in idx.features:
            return _link(r.target, idx.features[r.target], r.target, page)
        return f"``{r.target}``"
    if r.kind == "field":
        return f"``{r.target.split('.', 1)[-1] if '.' in r.target else r.target}``"
    if r.kind == "section":
        title = r.target.split(" / ")[-1]
        if r.target in idx.sections:
            return _link(title, idx.sections[r.target], section_target(r.target), page)
        return f"*{rst_text(title)}* (upstream section)"
    if r.kind == "req":
        if r.target not in idx.statements:
            raise RstError(f"{r.pos}: reference to unknown requirement '{r.target}'")
        target_page, st = idx.statements[r.target]
        return _link(st.id, target_page, st.id, page)
    if r.kind == "cite":
        if r.target in idx.references:
            return _link(f"[{r.target}]", idx.references[r.target], reference_target(r.target), page)
        return f"[{rst_text(r.target)}] (upstream bibliography)"
    raise RstError(f"{r.pos}: unknown reference kind '{r.kind}'")


# -- blocks ----------------------------------------------------------------------------------

def heading(title: str, level: int) -> str:
    if level >= len(HEADING_CHARS):
        raise RstError(f"'{title[:80]}' would be a heading {level + 1} levels deep; RST pages "
                       f"here have {len(HEADING_CHARS)}")
    text = rst_text(title)
    if not text[:1].isalnum():
        text = "\\" + text
    line = HEADING_CHARS[level] * max(len(text), 4)
    return f"{text}\n{line}\n"


def _indent(text: str, n: int = 3) -> str:
    pad = " " * n
    return "\n".join(pad + ln if ln.strip() else "" for ln in text.splitlines())


def _cell(text: str) -> str:
    return text if text.strip() else "\\-"


def list_table(header: list[str], rows: list[list[str]], widths: list[int] | None = None,
               title: str = "", css_class: str = "") -> str:
    lines = [f".. list-table::{(' ' + rst_text(title)) if title else ''}", "   :header-rows: 1"]
    if css_class:
        lines.append(f"   :class: {css_class}")
    if widths:
        lines.append("   :widths: " + " ".join(str(w) for w in widths))
    lines.append("")
    for row in [header] + rows:
        first = True
        for cell in row:
            lines.append(("   * - " if first else "     - ") + _cell(cell))
            first = False
    return "\n".join(lines) + "\n"


def feature_table(m: Module, idx: SiteIndex, page: str) -> str:
    rows = []
    for f in m.features:
        name = f"_`{rst_name(f.name)}`"
        desc = ("*Experimental.* " if f.experimental else "") + \
            " ".join(prose(p, idx, page) for p in f.prose)
        rows.append([name, str(f.bit) if f.bit is not None else "",
                     rst_text(f.scope), rst_text(", ".join(f.requires)),
                     rst_text(", ".join(f.excludes)), rst_text(", ".join(f.unsupported)), desc])
    return list_table(["Feature", "Bit", "Scope", "Requires", "Excludes", "Not on", "Meaning"],
                      rows, [18, 5, 12, 14, 10, 8, 40])


def constant_table(constants: tuple[Constant, ...], idx: SiteIndex, page: str) -> str:
    rows = [[f"``{c.name}``", str(c.value), rst_text(c.group or ""),
             " ".join(prose(p, idx, page) for p in c.prose)] for c in constants]
    return list_table(["Constant", "Value", "Group", "Meaning"], rows, [30, 8, 14, 40])


def struct_rst(s: Struct, idx: SiteIndex, page: str, level: int) -> str:
    out = [_target(struct_target(s.name)), heading(f"struct {s.name}", level)]
    for p in s.prose:
        out.append(prose(p, idx, page) + "\n")
    rows = []
    for f in s.fields:
        count = f"[{f.count}]" if f.count is not None else ""
        rows.append([str(f.offset), str(f.size), f"``{f.type}{count}``",
                     f"``{f.name}``" + (" (reserved)" if f.reserved else ""),
                     rst_text(f.access or ""), prose(f.prose, idx, page) if f.prose else ""])
    size = s.declared_size if s.declared_size is not None else s.size
    out.append(list_table(["Offset", "Size", "Type", "Field", "Access", "Meaning"], rows,
                          [7, 6, 10, 18, 10, 40], title=f"{s.name} ({size} bytes, little-endian)"))
    return "\n".join(out)


def reused_struct_rst(s: ReusedStruct, idx: SiteIndex, page: str, level: int) -> str:
    out = [_target(struct_target(s.name)), heading(f"struct {s.name} (upstream)", level),
           f"The layout is upstream's ({rst_text(s.name)}, unchanged); this module says what its "
           "use puts in these fields.\n"]
    for p in s.prose:
        out.append(prose(p, idx, page) + "\n")
    rows = [[f"``{f.name}``", prose(f.prose, idx, page)] for f in s.fills]
    if rows:
        out.append(list_table(["Field", "Holds"], rows, [20, 60]))
    return "\n".join(out)


# -- amendments ---------------------------------------------------------------------------------

def _quoted(text: str) -> str:
    return f"\u201c{rst_text(text)}\u201d"


def _edit_line(e, idx: SiteIndex, page: str) -> str:
    new = prose(e.new, idx, page) if e.new is not None else ""
    if e.op == "replace":
        return f"- replace {_quoted(e.fragment)} with \u201c{new}\u201d"
    if e.op == "delete":
        return f"- delete {_quoted(e.fragment)}"
    where = "after" if e.op == "insert-after" else "before"
    return f"- insert {where} {_quoted(e.fragment)}: \u201c{new}\u201d"


def _diff_markup(runs: list[tuple[str, str]]) -> str:
    parts: list[tuple[str, str]] = []
    for kind, text in runs:
        if kind == "same":
            parts.append(("t", text))
            continue
        lead = text[:len(text) - len(text.lstrip())]
        core = text.strip()
        trail = text[len(text.rstrip()):]
        if lead:
            parts.append(("t", lead))
        if core:
            parts.append(("m", f":amend-{kind}:`{_in_backquotes(core)}`"))
        if trail:
            parts.append(("t", trail))
    return rst_block_safe(_join(parts), markup_first=True)


def amendment_rst(a: Amendment, idx: SiteIndex, page: str, tree: SpecTree | None,
                  latex_idx: RefIndex | None = None) -> str:
    """What the amendment changes: with a tree, the upstream passage as a word diff
    (removed words struck through, added words marked); without, its own edits."""
    where = f"the {a.unit} of ``{a.label}`` located by {_quoted(a.at)}"
    if tree is None:
        lines = [f"Amends {where}.  No upstream tree was given, so the upstream wording is not "
                 "shown (``specc docs --spec-tree PATH`` shows this amendment as a diff against "
                 "it); the amendment's own edits:", ""]
        lines += [_edit_line(e, idx, page) for e in a.edits]
        return "\n".join(lines) + "\n"
    try:
        applied = apply_amendment(tree, a, latex_idx or RefIndex())
    except (AmendError, ValueError) as exc:
        return f"Amends {where}, but does not apply to the given tree: {rst_text(exc.message)}\n"
    p = applied.passage
    runs = word_diff(applied.old_plain, applied.new_plain)
    return (f"Amends {where} ({rst_text(p.file)}, line {p.pos.line}).  The upstream wording with "
            "the change, removed text struck through and added text marked:\n\n"
            + _indent(_diff_markup(runs)) + "\n")


def amendments_rst(m: Module, idx: SiteIndex, page: str, level: int,
                   verdicts: dict[str, Verdict] | None, tree: SpecTree | None) -> str:
    out = [heading("Amendments to upstream text", level)]
    latex_idx = RefIndex.of(m)
    for a in m.amendments:
        if a.statement is not None:
            out.append(statement_rst(a.statement, idx, page, verdicts,
                                     amendment_rst(a, idx, page, tree, latex_idx)))
        else:
            out.append(".. container:: amendment\n\n"
                       + _indent(amendment_rst(a, idx, page, tree, latex_idx)))
    return "\n".join(out)


def citation_rst(st: Statement, tree: SpecTree | None) -> str:
    """What a cited statement says: with a tree, its upstream words quoted with
    their file and line; without, the citation itself."""
    ref = st.cites
    if tree is None:
        return (f"Cites {_locator(ref)} of ``{ref.label}``.  No upstream tree was given, so its "
                "wording is not shown (``specc docs --spec-tree PATH`` quotes it).\n")
    try:
        up = resolve_cited(tree, ref.label, ref.at, ref.index)
    except CiteError as exc:
        return f"Cites {_locator(ref)} of ``{ref.label}``, which the given tree lacks: {rst_text(exc.message)}\n"
    return (f"Cites statement {up.index} of ``{ref.label}`` ({rst_text(up.file)}, line {up.line}; "
            f"fingerprint ``{up.fingerprint}``):\n\n" + _indent(_quoted(up.plain)) + "\n")


def _locator(ref) -> str:
    return f"statement {ref.index}" if ref.index is not None else f"the statement at {_quoted(ref.at)}"


def citations_rst(m: Module, idx: SiteIndex, page: str, level: int,
                  verdicts: dict[str, Verdict] | None, tree: SpecTree | None) -> str:
    out = [heading("Cited upstream requirements", level)]
    by_block: dict[str, list[Statement]] = {}
    for st in m.citations:
        by_block.setdefault(st.cites.label, []).append(st)
    for label, sts in by_block.items():
        out.append(heading(label.partition("normative:")[2], level + 1))
        out.append(f"Upstream label ``{label}``.\n")
        out += [statement_rst(st, idx, page, verdicts, citation_rst(st, tree)) for st in sts]
    return "\n".join(out)


def references_rst(m: Module, idx: SiteIndex, page: str) -> str:
    out = [heading("References", 0)]
    for r in m.references:
        kind = "normative" if r.normative else "non-normative"
        text = prose(r.text, idx, page) if r.text is not None else ""
        url = f" {r.url}" if r.url else ""
        out.append(f"{_target(reference_target(r.name))}\n**[{rst_text(r.name)}]** ({kind}) "
                   f"{text}{url}\n")
    return "\n".join(out)


def _step_line(step: Step) -> str:
    prefix = {"precondition": "given ", "expectation": "expect ", "action": ""}[step.kind]
    args = " ".join(a.value if a.name is None else f"{a.name}={a.value}" for a in step.args)
    return f"{prefix}{step.verb} {args}".rstrip()


def check_rst(c: Check) -> str:
    lines = [f"check {c.name}  (result {c.result})"]
    if c.comment:
        lines.append(f"  # {c.comment}")
    lines += ["  " + _step_line(s) for s in c.preconditions + c.steps]
    return "::\n\n" + _indent("\n".join(lines)) + "\n"


def verdict_rst(v: Verdict, rid: str = "") -> str:
    counts = ", ".join(f"{name} {n}" for name, n in v.counts if n)
    line = f"Latest verdict: :verdict-{v.overall.lower()}:`{v.overall}` ({counts})"
    if v.devices:
        line += ". By device: " + device_verdicts_rst(v, rid)
    return line


def device_verdicts_rst(v: Verdict, rid: str) -> str:
    """Each device's verdict on a requirement, grouped by verdict (worst first),
    each device linked to the requirement's row on its report page."""
    by: dict[str, list[str]] = {}
    for device, verdict, page in v.devices:
        by.setdefault(verdict, []).append(
            f"`{link_text(device)} <{page}.html#{anchor(rid)}>`__")
    order = ("FAIL", "WEDGED", "PASS", "REJECT", "SKIP")
    return "; ".join(f":verdict-{x.lower()}:`{x}` on " + ", ".join(by[x])
                     for x in order if x in by)


def statement_rst(st: Statement, idx: SiteIndex, page: str,
                  verdicts: dict[str, Verdict] | None, amendment: str | None = None) -> str:
    """A statement's box; `amendment` (RST) stands in for the text of an amended
    or cited upstream one."""
    targets = "".join(_target(a) for a in st.aliases) + _target(st.id)
    head = f"**{rst_text(st.id)}** — :rfc2119:`{st.keyword or '?'}`"
    if st.aliases:
        head += " — also known as " + ", ".join(f"``{a}``" for a in st.aliases)
    body = [head, ""]
    if amendment is not None:
        body += amendment.rstrip("\n").split("\n") + [""]
    else:
        body += [prose(with_condition(st.condition, st.text), idx, page, keywords=True), ""]
    if st.untestable is not None:
        body += ["*Untestable:* " + prose(st.untestable, idx, page), ""]
    for c in st.checks:
        body += [check_rst(c)]
    body += [f"Fingerprint ``{st.fingerprint}``, {st.role} requirement."]
    if verdicts is not None:
        v = verdicts.get(st.id)
        body += ["", verdict_rst(v, st.id) if v else "Latest verdict: :verdict-none:`not run`"]
    classes = f"statement {st.role}"
    return f"{targets}\n.. container:: {classes}\n\n" + _indent("\n".join(body)) + "\n"


def block_rst(b: NormativeBlock, idx: SiteIndex, page: str, level: int,
              verdicts: dict[str, Verdict] | None) -> str:
    who = "Driver" if b.role == "driver" else "Device"
    # A standalone block names an upstream block: its full path says where.
    out = [heading(f"{who} requirements: {b.path if b.standalone else b.title}", level)]
    out.append(f"Upstream label ``{b.label}``.\n")
    for st in b.statements:
        out.append(statement_rst(st, idx, page, verdicts))
    return "\n".join(out)


def section_rst(sec: Section, m: Module, idx: SiteIndex, page: str, level: int,
                verdicts: dict[str, Verdict] | None) -> str:
    out = [_target(section_target(sec.title_path)), heading(sec.title, level)]
    if sec.parent_given:
        out.append(f"Goes into upstream section *{rst_text(' / '.join(sec.path[:-1]))}*.\n")
    for item in sec.items:
        if isinstance(item, Paragraph):
            out.append(prose(item.prose, idx, page) + "\n")
        elif isinstance(item, Note):
            out.append(".. note::\n\n" + _indent(prose(item.prose, idx, page)) + "\n")
        elif isinstance(item, StructRef):
            if m.struct(item.name) is None and m.reused_struct(item.name) is None:
                raise RstError(f"{item.pos}: 'show {item.name}': no such structure")
            out.append(f"See `struct {item.name} <{rst_name(struct_target(item.name))}_>`__.\n")
        elif isinstance(item, NormativeBlock):
            out.append(block_rst(item, idx, page, level + 1, verdicts))
        elif isinstance(item, Section):
            out.append(section_rst(item, m, idx, page, level + 1, verdicts))
    return "\n".join(out)


ROLES = (".. role:: rfc2119\n.. role:: amend-del\n.. role:: amend-ins\n"
         + "".join(f".. role:: verdict-{v.lower()}\n" for v in VERDICTS)
         + ".. role:: verdict-none\n")


def module_rst(m: Module, idx: SiteIndex | None = None,
               verdicts: dict[str, Verdict] | None = None, index_page: str | None = None,
               tree: SpecTree | None = None) -> str:
    """The page for one module (``idx`` spans the site, for cross-page links;
    ``index_page``, when given, gets a link back at the top; ``tree``, when
    given, lets amendments show as diffs against the upstream wording)."""
    idx = idx or SiteIndex.of([m])
    page = m.name
    title = f"{m.name}: {m.title}" if m.title else m.name
    t = rst_text(title)
    bar = "=" * max(len(t), 4)
    out = [f"{bar}\n{t}\n{bar}\n", ROLES]
    if index_page:
        out.append(f"`All modules <{index_page}.html>`__\n")
    facts = [f"- Kind: {m.kind}"]
    if m.base:
        facts.append(f"- Targets: {rst_text(m.base)}")
    if m.fixes:
        facts.append(f"- Fixes: {rst_text(m.fixes)}")
    stmts = list(m.all_statements())
    checks = sum(len(st.checks) for st in stmts)
    untestable = sum(1 for st in stmts if st.untestable is not None)
    facts.append(f"- {len(stmts)} normative statements, {checks} checks, {untestable} untestable")
    out.append("\n".join(facts) + "\n")
    if m.prose:
        out.append(heading("Overview", 0))
        out += [prose(p, idx, page) + "\n" for p in m.prose]
    if m.features:
        out += [heading("Feature bits", 0), feature_table(m, idx, page)]
    if m.constants:
        out += [heading("Constants", 0), constant_table(m.constants, idx, page)]
    if m.structs or m.reused:
        out.append(heading("Structures", 0))
        out += [struct_rst(s, idx, page, 1) for s in m.structs]
        out += [reused_struct_rst(s, idx, page, 1) for s in m.reused]
    if m.sections:
        out.append(heading("Specification text", 0))
        out += [section_rst(s, m, idx, page, 1, verdicts) for s in m.sections]
    if m.blocks:
        out.append(heading("Restated upstream requirements" if m.kind == "baseline"
                           else "Additions to upstream requirement blocks", 0))
        out += [block_rst(b, idx, page, 1, verdicts) for b in m.blocks]
    if m.amendments:
        out.append(amendments_rst(m, idx, page, 0, verdicts, tree))
    if m.citations:
        out.append(citations_rst(m, idx, page, 0, verdicts, tree))
    if m.references:
        out.append(references_rst(m, idx, page))
    return "\n".join(out)
