"""Parse a .vspec source into a specc.model.Module.

``parse_source`` never raises for bad input: it returns the module it could
build (or None) and the diagnostics.  ``parse_file`` is the strict form for
callers that want a Module or an exception.
"""
from __future__ import annotations

import hashlib
import os
import re
import sys
from functools import lru_cache
from pathlib import Path

from lark import Lark, Token, Tree
from lark import __version__ as lark_version
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken

from specc import limits
from specc.check_steps import parse_check
from specc.diagnostics import Diagnostic, SpecError, error
from specc.model import (DEVICE_INDEPENDENT, Amendment, ConformanceEntry, Constant, Feature,
                         Field, FieldFill, Module, NormativeBlock, Note, Paragraph, Placement,
                         Prose, Reference, ReusedStruct, Section, SourcePos, Statement, Struct,
                         StructRef, Text, TextEdit, CiteRef)
from specc.prose import normalise, token_prose
from specc.model import SeriesLink, SeriesProse  # the series block
from specc.source import read_source

GRAMMAR = Path(__file__).with_name("vspec.lark")

# Upper-case RFC 2119 words, longest first so "MUST NOT" wins over "MUST".
RFC2119 = re.compile(r"\b(MUST\s+NOT|SHOULD\s+NOT|SHALL\s+NOT|MUST|SHOULD|SHALL|MAY|"
                     r"REQUIRED|RECOMMENDED|OPTIONAL)\b")


def grammar_cache(grammar: str) -> str | bool:
    """Where the built parser is kept between runs: a file in the user's
    cache directory named after the grammar, so an edited grammar gets a new
    file (lark also checks a hash of the grammar and options inside it);
    False, building the parser every run, when that directory cannot be
    made or written (a read-only home)."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    folder = os.path.join(base, "specc")
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError:
        return False
    if not os.access(folder, os.W_OK | os.X_OK):
        return False
    digest = hashlib.sha256(grammar.encode()).hexdigest()[:16]
    return os.path.join(folder, f"vspec-{digest}-lark{lark_version}-py{sys.version_info[0]}"
                                f"{sys.version_info[1]}.cache")


@lru_cache(maxsize=1)
def parser() -> Lark:
    grammar = GRAMMAR.read_text(encoding="utf-8")
    # Building the LALR tables costs more than checking every spec module;
    # lark pickles the result and loads it on later runs.
    return Lark(grammar, parser="lalr", lexer="contextual", propagate_positions=True,
                maybe_placeholders=False, cache=grammar_cache(grammar))


def parse_file(path: str | Path) -> Module:
    """Parse one file; raise SpecError carrying the diagnostics on any error."""
    text, diags = read_source(str(path))
    if text is None:
        raise SpecError(diags)
    module, more = parse_source(text, str(path))
    diags += more
    if module is None or any(d.is_error for d in diags):
        raise SpecError(diags)
    return module


def parse_source(text: str, file: str) -> tuple[Module | None, list[Diagnostic]]:
    diags: list[Diagnostic] = []
    if not text.strip():
        diags.append(error("empty file: expected a module header", SourcePos(file, 1, 1),
                           hint='start with: module NAME { kind proposal  title "..." }'))
        return None, diags
    try:
        tree = parser().parse(text)
    except UnexpectedInput as exc:
        diags += _syntax_errors(exc, text, file)
        return None, diags
    too_big = _over_limits(tree, file)
    if too_big:
        return None, diags + too_big
    try:
        module = _Builder(file, diags).module(tree)
    except RecursionError:
        diags.append(error("input nests too deeply", SourcePos(file, 1, 1)))
        return None, diags
    return module, diags


# ---- limits ------------------------------------------------------------------

_TOKEN_LIMITS = {"NAME": (limits.MAX_NAME, "name"), "STRING": (limits.MAX_STRING, "string"),
                 "TEXT": (limits.MAX_PROSE, "prose block"),
                 "INT": (limits.MAX_NUMBER_CHARS, "number")}


def _over_limits(tree: Tree, file: str) -> list[Diagnostic]:
    """One error per token or nesting beyond specc.limits (the tree is walked without recursion)."""
    out: list[Diagnostic] = []
    if len(tree.children) > limits.MAX_ITEMS + 1:
        out.append(error(f"{len(tree.children) - 1} top-level items; at most {limits.MAX_ITEMS} "
                         "fit in one file", SourcePos(file, 1, 1), hint="split the module"))
    stack: list[tuple[Tree, int]] = [(tree, 0)]
    while stack and len(out) < 10:
        node, depth = stack.pop()
        if node.data == "section":
            depth += 1
            if depth == limits.MAX_SECTION_DEPTH + 1:
                out.append(error(f"sections nest {depth} deep; at most {limits.MAX_SECTION_DEPTH} "
                                 "levels fit a LaTeX heading", _tok_pos(node.children[0], file),
                                 hint="flatten the outline or move the section up"))
        for child in node.children:
            if isinstance(child, Tree):
                stack.append((child, depth))
            elif child.type in _TOKEN_LIMITS:
                limit, what = _TOKEN_LIMITS[child.type]
                size = len(child)
                if size <= limit and (child.type != "INT" or int(child, 0) <= limits.MAX_NUMBER):
                    continue
                if child.type == "INT":
                    msg = f"number {child[:24]}{'...' if size > 24 else ''} is larger than 2^64 - 1"
                else:
                    msg = f"{what} of {size} characters; at most {limit} are allowed"
                out.append(error(msg, _tok_pos(child, file), width=min(size, 40)))
    return out


def _tok_pos(tok: Token, file: str) -> SourcePos:
    return SourcePos(file, tok.line or 1, tok.column or 1)


# ---- syntax errors --------------------------------------------------------

# A line that starts a top-level item: where parsing resumes after a syntax
# error, so independent mistakes in later items are reported in the same run.
_ITEM_START = re.compile(r'^(?:(?:feature|constant|struct|registers|reference)\s+[A-Za-z_]|section\s+"|'
                         r'(?:driver|device)\s+requirements\b|placement\s*\{|amend\s+[a-z]|'
                         r'reuse\s+struct\b|cite\s+[A-Za-z_])', re.M)
MAX_SYNTAX_ERRORS = 10


def _syntax_errors(exc: UnexpectedInput, text: str, file: str) -> list[Diagnostic]:
    """The first syntax error, then one per later top-level item that has one.

    After an error, parsing resumes at the next line that starts a top-level
    item (or at the error line itself, when the error is such a line: the
    item before it was not closed), with a stand-in header on line 1 and the
    lines in between blanked, so positions stay those of the real file.
    Recovery stops after an unterminated string or prose block, since what
    follows it cannot be told apart from prose.
    """
    out = [_syntax_error(exc, text, file)]
    lines = text.split("\n")
    resume_from = 0
    while len(out) < MAX_SYNTAX_ERRORS:
        last = out[-1]
        if last.pos is None or last.message.startswith(("unterminated", "unexpected end of file")):
            break
        err_line = last.pos.line
        start = None
        for m in _ITEM_START.finditer(text):
            line = text.count("\n", 0, m.start()) + 1
            if line > resume_from and (line > err_line or (line == err_line and last.pos.col == 1)):
                start = line
                break
        if start is None or start < 2:
            break
        resume_from = start
        stand_in = ["module _ { kind baseline }"] + [""] * (start - 2) + lines[start - 1:]
        try:
            parser().parse("\n".join(stand_in))
            break
        except UnexpectedInput as again:
            d = _syntax_error(again, "\n".join(stand_in), file)
            if d.pos is not None and d.pos.line < start:
                break
            out.append(d)
    return out


_TERMINAL_NAMES = {
    "NAME": "a name", "INT": "a number", "TEXT": 'a prose block """..."""',
    "STRING": 'a "string"', "CHECK_BODY": "a check body { ... }",
    "KEYWORD": "MUST, MUST NOT, SHOULD, SHOULD NOT or MAY", "FTYPE": "a field type (u8, le16, le32, le64)",
    "ACCESS": "read-only, write-only or read-write", "ROLE": "driver or device",
    "STRUCT_ROLE": "struct or registers", "POSITION": "before, after or end-of",
    "ANCHOR_KIND": "label, item or text", "RESERVED": "reserved", "$END": "end of file",
}


def _describe(term: str) -> str:
    if term in _TERMINAL_NAMES:
        return _TERMINAL_NAMES[term]
    try:
        pattern = parser().get_terminal(term).pattern
        return f"'{pattern.value}'"
    except (KeyError, AttributeError):
        return term


def _syntax_error(exc: UnexpectedInput, text: str, file: str) -> Diagnostic:
    line = getattr(exc, "line", 1) or 1
    col = getattr(exc, "column", 1) or 1
    if isinstance(exc, UnexpectedEOF) or (isinstance(exc, UnexpectedToken) and exc.token.type == "$END"):
        lines = text.split("\n")
        line = len(lines)
        col = len(lines[-1]) + 1
        if not lines[-1] and line > 1:
            line -= 1
            col = len(lines[line - 1]) + 1
        expected = sorted(_describe(t) for t in getattr(exc, "expected", ()) if t != "$END")
        hint = "expected " + _one_of(expected) if expected else None
        if expected == ["'}'"] or "'}'" in expected:
            hint = "a '{' block is not closed; " + (hint or "")
        return error("unexpected end of file", SourcePos(file, line, col), hint=hint)
    pos = SourcePos(file, line, col)
    if isinstance(exc, UnexpectedToken):
        tok = exc.token
        expected = sorted({_describe(t) for t in _really_expected(exc)})
        shown = tok.value if len(tok.value) <= 40 else tok.value[:37] + "..."
        shown = shown.split("\n")[0]
        hint = "expected " + _one_of(expected)
        if tok.type == "NAME" and "a number" in expected:
            hint = "expected a number (decimal or 0x hex)"
        return error(f"unexpected {_token_kind(tok)} '{shown}'", pos, hint=hint,
                     width=max(1, len(shown)))
    if isinstance(exc, UnexpectedCharacters):
        ch = text[exc.pos_in_stream] if exc.pos_in_stream < len(text) else ""
        allowed = sorted({_describe(t) for t in (exc.allowed or ())})
        hint = "expected " + _one_of(allowed) if allowed else None
        start = exc.pos_in_stream
        if ch == '"' and start >= 2 and text[start - 2:start + 1] == '"""':
            # the lexer read '""' as an empty string before the third quote
            line, col = pos.line, max(1, pos.col - 2)
            return error('unterminated prose block: no closing """', SourcePos(file, line, col),
                         hint='a prose block runs from """ to the next """', width=3)
        if ch == '"':
            return error("unterminated string", pos,
                         hint='"..." strings end on the same line; use """...""" for longer prose')
        elif ch == "{" and "a check body { ... }" not in allowed:
            hint = (hint or "") + ("; " if hint else "") + "braces are only allowed after a construct's header"
        shown = repr(ch)[1:-1] if ch.isprintable() else f"\\x{ord(ch):02x}" if ord(ch) < 256 else f"U+{ord(ch):04X}"
        return error(f"unexpected character '{shown}'", pos, hint=hint)
    return error(str(exc).split("\n")[0], pos)


def _really_expected(exc: UnexpectedToken) -> set[str]:
    # LALR merges states, so right after a reducible token (e.g. a prose block)
    # exc.expected lists every follower of that rule anywhere in the grammar;
    # the interactive parser tries each terminal through the reductions.
    ip = getattr(exc, "interactive_parser", None)
    if ip is not None:
        try:
            accepts = {t for t in ip.accepts() if t != "$END"}
            if accepts:
                return accepts
        except Exception:   # lark internals: fall back to the plain set
            pass
    return set(exc.expected)


def _token_kind(tok: Token) -> str:
    if tok.type in ("STRING", "TEXT"):
        return "string"
    if tok.type == "INT":
        return "number"
    if tok.type == "NAME":
        return "name"
    return "token"


def _one_of(items: list[str]) -> str:
    if len(items) > 8:
        items = items[:8] + ["..."]
    if len(items) == 1:
        return items[0]
    return "one of: " + ", ".join(items)


# ---- tree -> model ----------------------------------------------------------

def fingerprint(keyword: str | None, condition: Prose | None, text: Prose) -> str:
    """Short hash of the normalised keyword, condition and text."""
    def flat(p: Prose | None) -> str:
        if p is None:
            return ""
        return normalise("".join(x.text if isinstance(x, Text) else f"@{x.kind}({x.target})"
                                 for x in p.pieces))
    data = "\n".join([keyword or "", flat(condition), flat(text)])
    return hashlib.sha256(data.encode("utf-8")).hexdigest()[:12]


def amendment_fingerprint(keyword: str, label: str, at: str, edits: tuple[TextEdit, ...]) -> str:
    """Short hash of an amendment: keyword, where, the locating fragment and every edit.

    The upstream wording is not part of it (the checker may run without a
    tree); any change to what the amendment does changes the hash."""
    parts = [keyword, "amend", label, normalise(at)]
    for e in edits:
        new = "" if e.new is None else normalise("".join(
            x.text if isinstance(x, Text) else f"@{x.kind}({x.target})" for x in e.new.pieces))
        parts.append(f"{e.op}|{normalise(e.fragment)}|{new}")
    return hashlib.sha256("\n".join(parts).encode("utf-8")).hexdigest()[:12]


def citation_fingerprint(keyword: str, label: str, at: str | None, index: int | None) -> str:
    """Short hash of a citation as written: keyword, block label and locator.

    The upstream sentence's own fingerprint is recorded apart (spec/ids.json,
    `upstream`), since only a tree can give it."""
    where = f"#{index}" if index is not None else normalise(at or "")
    data = "\n".join([keyword, "cite", label, where])
    return hashlib.sha256(data.encode("utf-8")).hexdigest()[:12]


def keywords_in(text: str) -> list[str]:
    return [normalise(m.group(1)) for m in RFC2119.finditer(text)]


def _int(tok: Token) -> int:
    return int(str(tok), 0)


def _str(tok: Token) -> str:
    return str(tok)[1:-1]


class _Builder:
    def __init__(self, file: str, diags: list[Diagnostic]):
        self.file = file
        self.diags = diags
        self.conformance: dict[str, list[str]] = {}

    # positions
    def pos(self, x) -> SourcePos:
        if isinstance(x, Token):
            return SourcePos(self.file, x.line or 1, x.column or 1)
        meta = getattr(x, "meta", None)
        if meta is not None and not getattr(meta, "empty", True):
            return SourcePos(self.file, meta.line, meta.column)
        return SourcePos(self.file, 1, 1)

    def err(self, msg: str, at, hint: str | None = None, width: int = 1) -> None:
        self.diags.append(error(msg, self.pos(at), hint=hint, width=width))

    def prose(self, tree: Tree, split: bool = False) -> list[Prose]:
        tok = tree.children[0]
        return token_prose(str(tok), self.file, tok.line, tok.column, self.diags, split)

    def prose1(self, tree: Tree) -> Prose:
        return self.prose(tree)[0]

    def once(self, seen: dict, key: str, node, what: str) -> bool:
        if key in seen:
            self.err(f"duplicate {what}", node, hint=f"first given at line {seen[key].line}")
            return False
        seen[key] = self.pos(node)
        return True

    # module
    def module(self, tree: Tree) -> Module:
        header, *items = tree.children
        name_tok = header.children[0]
        fields: dict = {"kind": None, "title": None, "base": None, "subject": None, "fixes": None}
        prose: list[Prose] = []
        seen: dict = {}
        kind_tok = header
        for h in header.children[1:]:
            key = h.data[2:]
            if key == "text":
                prose += self.prose(h.children[0], split=True)
                continue
            if not self.once(seen, key, h, f"'{key}' in module header"):
                continue
            tok = h.children[0]
            fields[key] = str(tok) if key == "kind" else _str(tok)
            if key == "kind":
                kind_tok = tok
        if fields["kind"] is None:
            self.err("module header has no 'kind'", name_tok,
                     hint="add `kind proposal` (a change to the spec) or `kind baseline` "
                          "(restates upstream rules to test them)")
        elif fields["kind"] not in ("proposal", "baseline"):
            self.err(f"unknown module kind '{fields['kind']}'", kind_tok,
                     hint="kind is proposal or baseline", width=len(fields["kind"]))
            fields["kind"] = None
        # placements first: blocks need their conformance clauses
        placements: list[Placement] = []
        conform: list[ConformanceEntry] = []
        has_placement = False
        for it in items:
            if it.data == "placement":
                has_placement = True
                self.placement(it, placements, conform)
        for c in conform:
            self.conformance.setdefault(f"{c.role}normative:{c.block_path}", []).append(c.clause)
        features, constants, structs, sections, blocks = [], [], [], [], []
        amendments, reused, references, citations = [], [], [], []
        for it in items:
            d = it.data
            if d == "amendment":
                amendments.append(self.amendment(it))
            elif d == "citation":
                citations.append(self.citation(it))
            elif d == "reuse":
                reused.append(self.reuse(it))
            elif d == "reference":
                references.append(self.reference(it))
            elif d == "feature":
                features.append(self.feature(it))
            elif d == "constant":
                constants.append(self.constant(it))
            elif d == "struct":
                structs.append(self.struct(it))
            elif d == "section":
                sections.append(self.section(it, None))
            elif d == "normblock":
                blocks.append(self.normblock(it, None))
        # an unknown kind is reported above; "" keeps kind-specific checks quiet
        return Module(name=str(name_tok), kind=fields["kind"] or "", title=fields["title"],
                      base=fields["base"], subject=fields["subject"], fixes=fields["fixes"],
                      prose=tuple(prose), features=tuple(features), constants=tuple(constants),
                      structs=tuple(structs), sections=tuple(sections), blocks=tuple(blocks),
                      placements=tuple(placements), conformance=tuple(conform),
                      has_placement=has_placement, file=self.file, pos=self.pos(name_tok),
                      amendments=tuple(amendments), reused=tuple(reused),
                      references=tuple(references), citations=tuple(citations),
                      series=self.series_prose(items))

    def feature(self, tree: Tree) -> Feature:
        name_tok, *items = tree.children
        bit = None
        bit_pos = None
        scope = None
        prose: list[Prose] = []
        requires: list[str] = []
        excludes: list[str] = []
        unsupported: list[str] = []
        experimental = False
        seen: dict = {}
        for it in items:
            d = it.data
            if d == "f_bit":
                if self.once(seen, "bit", it, f"'bit' for {name_tok}"):
                    bit = _int(it.children[0])
                    bit_pos = self.pos(it.children[0])
            elif d == "f_scope":
                if self.once(seen, "scope", it, f"'scope' for {name_tok}"):
                    scope = str(it.children[0])
            elif d == "f_requires":
                requires += self.names(it.children[0])
            elif d == "f_excludes":
                excludes += self.names(it.children[0])
            elif d == "f_unsupported":
                for t in it.children[0].children:
                    if str(t) not in ("pci", "mmio", "ccw"):
                        self.err(f"unknown transport '{t}'", t, hint="transports are pci, mmio and ccw",
                                 width=len(t))
                    else:
                        unsupported.append(str(t))
            elif d == "f_experimental":
                experimental = True
            elif d == "f_text":
                prose += self.prose(it.children[0], split=True)
        if bit is None:
            self.err(f"feature {name_tok} has no 'bit'", name_tok, width=len(name_tok),
                     hint="add `bit N`; a new device-independent feature takes the lowest free bit of 44 to 49")
        if scope is None:
            self.err(f"feature {name_tok} has no 'scope'", name_tok, width=len(name_tok),
                     hint="add `scope device-independent` or `scope <device type>` (e.g. blk)")
        return Feature(name=str(name_tok), bit=bit, scope=scope or DEVICE_INDEPENDENT,
                       prose=tuple(prose), requires=tuple(requires), excludes=tuple(excludes),
                       unsupported=tuple(unsupported), experimental=experimental,
                       pos=self.pos(name_tok), bit_pos=bit_pos)

    def names(self, tree: Tree) -> list[str]:
        return [str(t) for t in tree.children]

    def constant(self, tree: Tree) -> Constant:
        name_tok, value_tok, *items = tree.children
        group = None
        prose: list[Prose] = []
        for it in items:
            if it.data == "c_group":
                group = str(it.children[0])
            else:
                prose += self.prose(it.children[0], split=True)
        return Constant(str(name_tok), _int(value_tok), group, tuple(prose), self.pos(name_tok))

    def struct(self, tree: Tree) -> Struct:
        role_tok, name_tok, *rest = tree.children
        declared = None
        if rest and isinstance(rest[0], Token) and rest[0].type == "INT":
            declared = _int(rest[0])
            rest = rest[1:]
        fields: list[Field] = []
        prose: list[Prose] = []
        offset = 0
        for it in rest:
            if it.data == "s_text":
                prose += self.prose(it.children[0], split=True)
                continue
            f = self.field(it, offset)
            if f is not None:
                fields.append(f)
                offset = f.end
        role = "registers" if str(role_tok) == "registers" else "structure"
        return Struct(str(name_tok), role, tuple(fields), declared, tuple(prose), self.pos(name_tok))

    def field(self, tree: Tree, offset: int) -> Field | None:
        reserved = False
        ftype = name = None
        count = at = access = None
        prose = None
        toks = list(tree.children)
        i = 0
        if isinstance(toks[0], Token) and toks[0].type == "RESERVED":
            reserved = True
            i = 1
        ftype, name = str(toks[i]), toks[i + 1]
        for x in toks[i + 2:]:
            if isinstance(x, Tree):
                if x.data == "array_len":
                    count = x.children[0]
                elif x.data == "field_offset":
                    at = x.children[0]
                else:
                    prose = self.prose1(x)
            elif x.type == "ACCESS":
                access = str(x)
        if count is not None and _int(count) == 0:
            self.err(f"array field '{name}' has zero elements", count)
            return None
        real_offset = _int(at) if at is not None else offset
        return Field(name=str(name), type=ftype, count=_int(count) if count is not None else None,
                     reserved=reserved, offset=real_offset, offset_explicit=at is not None,
                     access=access, prose=prose, pos=self.pos(name))

    def section(self, tree: Tree, parent: tuple[str, ...] | None) -> Section:
        title_tok, *rest = tree.children
        title = normalise(_str(title_tok))
        parent_given = False
        if rest and isinstance(rest[0], Token) and rest[0].type == "STRING":
            parent_given = True
            ptxt = _str(rest[0])
            if parent is not None:
                self.err("only a top-level section can say where it goes with 'in'", rest[0],
                         hint="a nested section's path is its parent's path plus its title")
            parent = tuple(p.strip() for p in ptxt.split("/") if p.strip())
            rest = rest[1:]
        if not title:
            self.err("section title is empty", title_tok)
        path = (parent or ()) + (title,)
        items = []
        for it in rest:
            d = it.data
            if d == "paragraph":
                items += [Paragraph(p) for p in self.prose(it.children[0], split=True)]
            elif d == "note":
                items.append(Note(self.prose1(it.children[0])))
            elif d == "show":
                items.append(StructRef(str(it.children[0]), self.pos(it.children[0])))
            elif d == "section":
                items.append(self.section(it, path))
            elif d == "normblock":
                items.append(self.normblock(it, path))
        return Section(title, path, tuple(items), parent_given, self.pos(title_tok))

    def normblock(self, tree: Tree, section_path: tuple[str, ...] | None) -> NormativeBlock:
        role_tok, *rest = tree.children
        role = str(role_tok)
        title_tok = None
        if rest and isinstance(rest[0], Token) and rest[0].type == "STRING":
            title_tok = rest[0]
            rest = rest[1:]
        if section_path is None:
            if title_tok is None:
                self.err(f"a top-level {role} requirements block needs the upstream path it "
                         "restates or extends", role_tok,
                         hint=f'write: {role} requirements "Basic Facilities of a Virtio Device / Feature Bits" {{ ... }}')
                path = "?"
            else:
                path = " / ".join(p.strip() for p in _str(title_tok).split("/") if p.strip())
            title = path.split(" / ")[-1]
        else:
            if title_tok is not None:
                title = normalise(_str(title_tok))
                path = " / ".join(section_path + (title,))
            else:
                title = section_path[-1]
                path = " / ".join(section_path)
        statements = tuple(self.statement(r, role, path) for r in rest)
        label = f"{role}normative:{path}"
        return NormativeBlock(role=role, title=title, path=path, statements=statements,
                              standalone=section_path is None,
                              conformance=tuple(self.conformance.get(label, ())),
                              pos=self.pos(role_tok))

    def statement(self, tree: Tree, role: str, block_path: str) -> Statement:
        id_tok, *rest = tree.children
        declared = None
        if rest and isinstance(rest[0], Token) and rest[0].type == "KEYWORD":
            declared = normalise(str(rest[0]))
            rest = rest[1:]
        sid = str(id_tok)
        condition = None
        text = None
        untestable = None
        aliases: list[str] = []
        checks = []
        seen: dict = {}
        for it in rest:
            d = it.data
            if d == "r_when":
                if self.once(seen, "when", it, f"'when' in {sid}"):
                    condition = self.prose1(it.children[0])
            elif d == "r_text":
                if self.once(seen, "text", it, f"text in {sid}"):
                    text = self.prose1(it.children[0])
            elif d == "r_alias":
                aliases += self.names(it.children[0])
            elif d == "r_untestable":
                if self.once(seen, "untestable", it, f"'untestable' in {sid}"):
                    untestable = self.prose1(it.children[0])
            elif d == "r_check":
                name_tok, body = it.children
                checks.append(parse_check(str(name_tok), sid, str(body), self.pos(body), self.diags))
        if text is None:
            self.err(f"statement {sid} has no text", id_tok, width=len(sid),
                     hint='add the requirement as prose: """The device MUST ..."""')
            text = Prose((), self.pos(id_tok))
        keyword = declared
        if keyword is None:
            found = sorted(set(keywords_in(text.plain())))
            if len(found) == 1:
                keyword = found[0]
        names = [c.name for c in checks]
        for c in checks:
            if names.count(c.name) > 1 and names.index(c.name) != checks.index(c):
                self.diags.append(error(f"duplicate check name '{c.name}' in {sid}", c.pos))
        return Statement(id=sid, keyword=keyword, keyword_declared=declared is not None,
                         condition=condition, text=text,
                         fingerprint=fingerprint(keyword, condition, text),
                         aliases=tuple(aliases), checks=tuple(checks), untestable=untestable,
                         role=role, block_path=block_path, pos=self.pos(id_tok))

    def reuse(self, tree: Tree) -> ReusedStruct:
        name_tok, *items = tree.children
        fills: list[FieldFill] = []
        prose: list[Prose] = []
        seen: dict = {}
        for it in items:
            if it.data == "u_text":
                prose += self.prose(it.children[0], split=True)
                continue
            ftok, ptree = it.children
            if self.once(seen, str(ftok), ftok, f"field '{ftok}' in reuse of {name_tok}"):
                fills.append(FieldFill(str(ftok), self.prose1(ptree), self.pos(ftok)))
        return ReusedStruct(str(name_tok), tuple(fills), tuple(prose), self.pos(name_tok))

    def reference(self, tree: Tree) -> Reference:
        name_tok, *items = tree.children
        normative = None
        text = None
        url = None
        seen: dict = {}
        for it in items:
            d = it.data
            if d in ("b_normative", "b_informative"):
                if self.once(seen, "kind", it, f"'normative'/'informative' in reference {name_tok}"):
                    normative = d == "b_normative"
            elif d == "b_url":
                if self.once(seen, "url", it, f"'url' in reference {name_tok}"):
                    url = _str(it.children[0])
            elif self.once(seen, "text", it, f"text in reference {name_tok}"):
                text = self.prose1(it.children[0])
        if normative is None:
            self.err(f"reference {name_tok} does not say whether it is normative", name_tok,
                     width=len(name_tok), hint="add `normative` or `informative`")
        if text is None:
            self.err(f"reference {name_tok} has no text", name_tok, width=len(name_tok),
                     hint='add the entry: """Authors, "Title", RFC NNNN, Month Year."""')
        return Reference(str(name_tok), bool(normative), text, url, self.pos(name_tok))

    def amendment(self, tree: Tree) -> Amendment:
        unit_tree, where_tok, at_tok, *items = tree.children
        unit = unit_tree.data[2:]
        where = _path(_str(where_tok)) if not _str(where_tok).startswith(
            ("sec:", "drivernormative:", "devicenormative:")) else _label(_str(where_tok))
        at = normalise(_str(at_tok))
        if not at:
            self.err("the locating fragment after 'at' is empty", at_tok,
                     hint="quote a few words of the upstream text to change")
        edits: list[TextEdit] = []
        aliases: list[str] = []
        checks = []
        untestable = None
        seen: dict = {}
        for it in items:
            d = it.data
            if d == "e_replace":
                old, new = it.children
                edits.append(TextEdit("replace", normalise(_str(old)), self.prose1(new), self.pos(old)))
            elif d == "e_insert":
                position, frag, new = it.children
                if str(position) == "end-of":
                    self.err("insert takes 'before' or 'after' a fragment", position,
                             width=len(position), hint='write: insert after "fragment" """new text"""')
                    continue
                edits.append(TextEdit(f"insert-{position}", normalise(_str(frag)), self.prose1(new),
                                      self.pos(frag)))
            elif d == "e_delete":
                frag = it.children[0]
                edits.append(TextEdit("delete", normalise(_str(frag)), None, self.pos(frag)))
            elif d == "r_alias":
                aliases += self.names(it.children[0])
            elif d == "r_untestable":
                if self.once(seen, "untestable", it, "'untestable' in amendment"):
                    untestable = self.prose1(it.children[0])
            elif d == "r_check":
                name_tok, body = it.children
                checks.append((name_tok, body))
        for e in edits:
            if not e.fragment:
                self.diags.append(error("empty fragment in an amendment edit", e.pos,
                                        hint="quote a few words of the upstream text"))
        if not edits:
            self.err("amendment changes nothing", tree.children[0] if isinstance(
                tree.children[0], Token) else at_tok,
                     hint='add replace "old" with """new""", insert after "fragment" """new""" '
                          'or delete "fragment"')
        statement = None
        if unit == "statement":
            id_tok, kw_tok = unit_tree.children
            sid = str(id_tok)
            label = where
            role, _, path = label.partition("normative:")
            if role not in ("driver", "device") or not path:
                self.err("an amended statement is located in a normative block", where_tok,
                         hint='write in "drivernormative:<path>" or in "devicenormative:<path>"')
                role, path = "driver", "?"
            keyword = normalise(str(kw_tok))
            parsed = [parse_check(str(n), sid, str(b), self.pos(b), self.diags) for n, b in checks]
            news = [e.new for e in edits if e.new is not None]
            pieces: list = []
            for i, p in enumerate(news):
                if i:
                    pieces.append(Text(" … "))
                pieces += list(p.pieces)
            text = Prose(tuple(pieces), news[0].pos if news else self.pos(at_tok),
                         tuple(w for p in news for w in p.words))
            statement = Statement(id=sid, keyword=keyword, keyword_declared=True, condition=None,
                                  text=text, fingerprint=amendment_fingerprint(keyword, label, at,
                                                                               tuple(edits)),
                                  aliases=tuple(aliases), checks=tuple(parsed),
                                  untestable=untestable, role=role, block_path=path,
                                  pos=self.pos(id_tok))
        elif checks or aliases or untestable is not None:
            self.err(f"only an amended statement has checks, aliases or 'untestable' "
                     f"(this amends a {unit})", at_tok,
                     hint="write: amend statement ID KEYWORD in \"drivernormative:...\" at \"...\"")
        return Amendment(unit, where, at, tuple(edits), statement, self.pos(tree),
                         self.pos(where_tok), self.pos(at_tok))

    def citation(self, tree: Tree) -> Statement:
        id_tok, kw_tok, where_tok, at_tree, *items = tree.children
        sid = str(id_tok)
        label = _label(_str(where_tok))
        role, _, path = label.partition("normative:")
        if role not in ("driver", "device") or not path:
            self.err("a citation names a normative block", where_tok, width=len(where_tok),
                     hint='write in "drivernormative:<path>" or in "devicenormative:<path>"')
            role, path = "driver", "?"
        at_tok = at_tree.children[0]
        at, index = None, None
        if at_tok.type == "INT":
            index = _int(at_tok)
            if index < 1:
                self.err("statements are numbered from 1", at_tok, width=len(at_tok))
        else:
            at = normalise(_str(at_tok))
            if not at:
                self.err("the fragment after 'at' is empty", at_tok, width=len(at_tok),
                         hint="quote a few words of the upstream statement, or give its number")
        aliases: list[str] = []
        checks = []
        untestable = None
        seen: dict = {}
        for it in items:
            if it.data == "r_alias":
                aliases += self.names(it.children[0])
            elif it.data == "r_untestable":
                if self.once(seen, "untestable", it, f"'untestable' in citation {sid}"):
                    untestable = self.prose1(it.children[0])
            else:
                checks.append(it.children)
        keyword = normalise(str(kw_tok))
        parsed = [parse_check(str(n), sid, str(b), self.pos(b), self.diags) for n, b in checks]
        ref = CiteRef(label, at, index, self.pos(where_tok), self.pos(at_tok))
        return Statement(id=sid, keyword=keyword, keyword_declared=True, condition=None,
                         text=Prose((), self.pos(at_tok)),
                         fingerprint=citation_fingerprint(keyword, label, at, index),
                         aliases=tuple(aliases), checks=tuple(parsed), untestable=untestable,
                         role=role, block_path=path, pos=self.pos(id_tok), cites=ref)

    def placement(self, tree: Tree, out: list[Placement], conform: list[ConformanceEntry]) -> None:
        for it in tree.children:
            if it.data == "conform":
                role_tok, block_tok, clause_tok = it.children
                conform.append(ConformanceEntry(str(role_tok), _path(_str(block_tok)),
                                                _path(_str(clause_tok)), self.pos(it)))
                continue
            part, file_tok, anchor = it.children
            kind = part.data[2:]
            role = None
            if kind == "block":
                role = str(part.children[0])
                target = _path(_str(part.children[1]))
            elif kind == "section":
                target = _path(_str(part.children[0]))
            elif kind == "unsupported":
                target = f"{part.children[0]} on {part.children[1]}"
            else:
                target = str(part.children[0])
            position, akind, anchor_tok = anchor.children
            out.append(Placement(kind, target, _str(file_tok), str(position), str(akind),
                                 _str(anchor_tok), role, self.pos(part)))


    def series_prose(self, items: list[Tree]) -> SeriesProse | None:
        """The `series { ... }` block (at most one) of a module."""
        blocks = [it for it in items if it.data == "series_block"]
        for extra in blocks[1:]:
            self.err("duplicate 'series' block", extra,
                     hint=f"first given at line {self.pos(blocks[0]).line}")
        if not blocks:
            return None
        cover: list[Prose] = []
        why: dict[str, list[Prose]] = {}
        subjects: dict[str, str] = {}
        changelog: dict[int, list[Prose]] = {}
        links: list[SeriesLink] = []
        seen: dict = {}
        for it in blocks[0].children:
            kind = it.data[3:]
            if kind == "cover":
                cover += self.prose(it.children[0], split=True)
            elif kind == "why":
                area = str(it.children[0])
                if self.once(seen, f"why {area}", it, f"'why {area}'"):
                    why[area] = self.prose(it.children[1], split=True)
            elif kind == "subject":
                area = str(it.children[0])
                if self.once(seen, f"subject {area}", it, f"'subject {area}'"):
                    subjects[area] = _str(it.children[1])
            elif kind == "changelog":
                tok = it.children[0]
                m = re.fullmatch(r"v(\d+)", str(tok))
                if m is None or int(m.group(1)) < 2:
                    self.err(f"changelog '{tok}': name a later version, v2 or above", tok,
                             width=len(str(tok)))
                elif self.once(seen, f"changelog {tok}", it, f"'changelog {tok}'"):
                    changelog[int(m.group(1))] = self.prose(it.children[1], split=True)
            else:
                name_tok, target_tok = it.children
                if self.once(seen, f"link {name_tok}", it, f"'link {name_tok}'"):
                    links.append(SeriesLink(str(name_tok), _str(target_tok), self.pos(it)))
        return SeriesProse(cover=tuple(cover), why=tuple((a, tuple(p)) for a, p in why.items()),
                           subjects=tuple(subjects.items()),
                           changelog=tuple(sorted((v, tuple(p)) for v, p in changelog.items())),
                           links=tuple(links), pos=self.pos(blocks[0]))


def _label(s: str) -> str:
    prefix, _, rest = s.partition(":")
    return f"{prefix}:{_path(rest)}"


def _path(s: str) -> str:
    # spaced slashes separate when a path has any, so a title holding a
    # slash of its own ("Virtio over channel I/O") stays whole
    parts = re.split(r"\s+/\s+", s) if re.search(r"\s/\s", s) else s.split("/")
    return " / ".join(p.strip() for p in parts if p.strip())
