"""Read an OASIS virtio spec source tree the way its build reads it.

`load_tree(root)` follows `\\input` from `virtio.tex` in document order and
returns a `SpecTree`: sections with their title paths and `sec:` labels,
normative blocks, conformance clauses with their `\\ref` items, every label and
reference, list environments with their items, the feature-bit allocation
list, feature definitions and RFC 2119 keywords, each with its position.
The audit and the patch builder both work from this one reading.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from specc import limits
from specc.upstream.source import (Position, SourceText, normalise_space, plain_title,
                                   read_args, read_optional, skip_space)

TOP_FILE = "virtio.tex"
# Files the build scripts write before running XeLaTeX (make-setup-generated.sh):
# a checkout does not hold them, and they carry no spec text.
GENERATED_INPUTS = frozenset({"setup-generated.tex"})

SECTION_LEVELS = {"chapter": 0, "section": 1, "subsection": 2, "subsubsection": 3,
                  "paragraph": 4, "subparagraph": 5}
LIST_ENVS = ("itemize", "description", "enumerate")
REF_COMMANDS = ("ref", "nameref", "autoref", "pageref")
NORMATIVE_PREFIX = {"drivernormative": "driver", "devicenormative": "device"}

KEYWORDS = ("MUST NOT", "MUST", "SHALL NOT", "SHALL", "SHOULD NOT", "SHOULD",
            "NOT RECOMMENDED", "RECOMMENDED", "REQUIRED", "MAY", "OPTIONAL")

_TOKEN = re.compile(
    r"(?P<cmd>\\(?:input|include|chapter|section|subsection|subsubsection|paragraph|"
    r"subparagraph|drivernormative|devicenormative|conformance|label|ref|nameref|autoref|"
    r"pageref|hyperref|item|begin|end|appendix)(?![A-Za-z@]))(?P<star>\*?)"
    r"|(?P<kw>(?<![A-Za-z0-9_\\])(?:MUST\s+NOT|SHALL\s+NOT|SHOULD\s+NOT|NOT\s+RECOMMENDED|"
    r"MUST|SHALL|SHOULD|RECOMMENDED|REQUIRED|MAY|OPTIONAL)(?![A-Za-z0-9_]))")

# The keyword alone (upper case, two-word forms may break across lines).
KEYWORD_RE = re.compile(r"(?<![A-Za-z0-9_\\])(?:MUST\s+NOT|SHALL\s+NOT|SHOULD\s+NOT|NOT\s+RECOMMENDED|"
                        r"MUST|SHALL|SHOULD|RECOMMENDED|REQUIRED|MAY|OPTIONAL)(?![A-Za-z0-9_])")

_FEATURE_ITEM = re.compile(r"^\s*(VIRTIO_(?:([A-Z0-9_]+?)_)?F_[A-Z0-9_]+)\s*\(\s*(\d+)\s*\)\s*$")


_LABEL_PREFIX = re.compile(r"[a-z]+:")


class TreeError(Exception):
    """The path is not a spec tree, or the reader cannot follow it (one line)."""


@dataclass
class Section:
    """A heading: a plain section, a normative block's heading or a conformance clause."""
    kind: str                      # "section" | "normative" | "conformance"
    level: int                     # 0 chapter .. 5 subparagraph
    title: str                     # plain text
    path: tuple[str, ...]          # title path from the chapter down
    pos: Position
    offset: int                    # offset of the heading command in its file
    parent: "Section | None" = None
    label: str | None = None       # its own label, without the prefix (sec:, par:, ...)
    label_name: str | None = None  # the same label in full, as \ref names it
    label_pos: Position | None = None
    body_offset: int = 0           # just after the heading (and its label)
    end_offset: int = -1           # where its content ends in its own file
    appendix: bool = False
    children: list["Section"] = field(default_factory=list)

    @property
    def file(self) -> str:
        return self.pos.file

    @property
    def chapter(self) -> "Section":
        s = self
        while s.parent is not None:
            s = s.parent
        return s


@dataclass
class Label:
    name: str                      # full, normalised (e.g. "sec:A / B")
    pos: Position
    section: Section | None        # the heading in force where it is defined


@dataclass
class Ref:
    target: str                    # normalised label name
    command: str                   # ref, nameref, ...
    pos: Position
    offset: int


@dataclass
class Item:
    """One \\item of a list environment."""
    file: str
    offset: int                    # at the backslash of \item
    pos: Position
    opt: tuple[int, int] | None    # span of the [optional argument] content
    end_offset: int = -1           # next sibling item or the list's \end

    def opt_text(self, src: SourceText) -> str | None:
        return None if self.opt is None else src.text[self.opt[0]:self.opt[1]]


@dataclass
class ListEnv:
    env: str
    file: str
    offset: int                    # at \begin
    end_offset: int                # at \end
    pos: Position
    section: Section | None
    items: list[Item] = field(default_factory=list)
    depth: int = 0                 # nesting depth among lists


@dataclass
class NormativeBlock:
    role: str                      # "driver" | "device"
    path: str                      # the label path, normalised, without prefix
    title: str
    heading: Section               # the heading the macro prints
    path_pos: Position             # where the path argument starts
    keywords: list["Keyword"] = field(default_factory=list)
    hand_written: bool = False     # a plain heading plus a \label, not the macro

    @property
    def label(self) -> str:
        return f"{self.role}normative:{self.path}"

    @property
    def pos(self) -> Position:
        return self.heading.pos

    @property
    def enclosing(self) -> Section | None:
        return self.heading.parent


@dataclass
class ConformanceClause:
    title: str
    heading: Section
    items: list[Ref] = field(default_factory=list)

    @property
    def pos(self) -> Position:
        return self.heading.pos


@dataclass
class Keyword:
    word: str                      # normalised, e.g. "MUST NOT"
    pos: Position
    section: Section | None
    block: NormativeBlock | None


@dataclass
class BitRange:
    first: int
    last: int | None               # None: "and above"

    def __contains__(self, bit: int) -> bool:
        return bit >= self.first and (self.last is None or bit <= self.last)

    def __str__(self) -> str:
        if self.last is None:
            return f"{self.first} and above"
        return str(self.first) if self.first == self.last else f"{self.first} to {self.last}"


@dataclass
class AllocationItem:
    """One item of the feature-bit allocation list: which bits go to whom."""
    category: str                  # "device" | "extensions" | "future"
    ranges: list[BitRange]
    item: Item
    text: str                      # the range text as written

    def covers(self, bit: int) -> bool:
        return any(bit in r for r in self.ranges)


@dataclass
class FeatureDef:
    name: str
    bit: int
    scope: str                     # "device-independent" or the device section path
    pos: Position
    item: Item
    section: Section | None
    legacy: bool                   # defined in a "Legacy Interface" section


@dataclass(frozen=True)
class OutsideInput:
    """An \\input or \\include naming a file outside the tree: reported, never read."""
    name: str
    pos: Position


@dataclass
class SpecTree:
    root: Path
    files: list[str]               # in the order the build reads them
    sources: dict[str, SourceText]
    sections: list[Section]
    blocks: list[NormativeBlock]
    clauses: list[ConformanceClause]
    labels: list[Label]
    refs: list[Ref]
    lists: list[ListEnv]
    allocation: list[AllocationItem]
    allocation_list: ListEnv | None
    features: list[FeatureDef]
    keywords: list[Keyword]
    missing_generated: list[str]
    outside_inputs: list[OutsideInput] = field(default_factory=list)

    def section_by_label(self, label: str) -> Section | None:
        label = label[4:] if label.startswith("sec:") else label
        for s in self.sections:
            if s.label == label:
                return s
        return None

    def block_by_label(self, label: str) -> NormativeBlock | None:
        for b in self.blocks:
            if b.label == label:
                return b
        return None


# ---------------------------------------------------------------------------

def is_spec_tree(root: Path) -> bool:
    """Whether ``root`` looks like the top of a virtio spec checkout."""
    return (root / TOP_FILE).is_file() and (root / "commands.tex").is_file()


def _inside(root: Path, path: Path) -> bool:
    """Whether ``path``, symbolic links followed, lies in the tree at ``root``."""
    try:
        return path.resolve().is_relative_to(root.resolve())
    except (OSError, RuntimeError):      # a symlink loop
        return False


def _resolve_input(root: Path, name: str) -> tuple[str, Path]:
    """TeX looks for NAME, then NAME.tex, relative to the directory the build runs in."""
    name = name.strip()
    cand = root / name
    if not cand.is_file() and not name.endswith(".tex"):
        cand = root / (name + ".tex")
        name = name + ".tex"
    return os.path.normpath(name), cand


_NON_SPACE = re.compile(r"\S")


class _Reader:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.files: list[str] = []
        self.sources: dict[str, SourceText] = {}
        self.sections: list[Section] = []
        self.blocks: list[NormativeBlock] = []
        self.clauses: list[ConformanceClause] = []
        self.labels: list[Label] = []
        self.refs: list[Ref] = []
        self.lists: list[ListEnv] = []
        self.keywords: list[Keyword] = []
        self.missing_generated: list[str] = []
        self.outside_inputs: list[OutsideInput] = []
        self.bytes_read = 0
        self.open: list[Section] = []          # open headings, outermost first
        self.blocks_open: list[NormativeBlock] = []   # blocks of the current heading
        self.clause: ConformanceClause | None = None
        self.list_stack: list[ListEnv] = []
        self.appendix = False
        self.stack_files: list[str] = []

    # -- headings -----------------------------------------------------------
    def _close_sections(self, level: int, src: SourceText, offset: int) -> None:
        while self.open and self.open[-1].level >= level:
            s = self.open.pop()
            s.end_offset = offset if s.file == src.name else len(self.sources[s.file].text)

    def _heading(self, kind: str, level: int, title_tex: str, src: SourceText,
                 offset: int, body_offset: int) -> Section:
        self._close_sections(level, src, offset)
        # Any heading ends the normative block or conformance clause before it.
        self.blocks_open = []
        self.clause = None
        parent = self.open[-1] if self.open else None
        title = plain_title(title_tex)
        path = (parent.path if parent else ()) + (title,)
        sec = Section(kind=kind, level=level, title=title, path=path,
                      pos=src.position(offset), offset=offset, parent=parent,
                      body_offset=body_offset, appendix=self.appendix)
        if parent is not None:
            parent.children.append(sec)
        self.sections.append(sec)
        self.open.append(sec)
        return sec

    def _attach_label(self, src: SourceText, start: int, name: str, pos: Position,
                      label_end: int) -> None:
        """A label right after a plain heading (sec:, par:, ...) names that heading.

        A `drivernormative:`/`devicenormative:` label right after a plain
        heading makes a hand-written normative block (upstream has one: a
        subparagraph "Device Requirements: ..." with both labels set by hand)."""
        m = _LABEL_PREFIX.match(name)
        if not self.open or not m:
            return
        sec = self.open[-1]
        if sec.file != src.name or _NON_SPACE.search(src.masked, sec.body_offset, start):
            return
        role = NORMATIVE_PREFIX.get(m.group(0)[:-1])
        if role is not None:
            if sec.kind == "conformance":
                return
            if sec.kind == "normative" and not (
                    self.blocks_open and all(b.hand_written and b.heading is sec
                                             for b in self.blocks_open)):
                return  # a second label on a macro block is an alias (e.g. an old name)
            sec.kind = "normative"
            title = re.sub(r"^(Driver|Device) Requirements:\s*", "", sec.title)
            block = NormativeBlock(role=role, path=name[m.end():], title=title, heading=sec,
                                   path_pos=pos, hand_written=True)
            self.blocks.append(block)
            self.blocks_open.append(block)
            sec.body_offset = label_end
            return
        if sec.kind == "normative" or sec.label is not None:
            return
        sec.label = name[m.end():]
        sec.label_name = name
        sec.label_pos = pos
        sec.body_offset = label_end

    # -- the walk -----------------------------------------------------------
    def read_file(self, name: str, path: Path, where: str) -> None:
        if name in self.stack_files:
            raise TreeError(f"{where}: \\input{{{name}}} includes itself")
        if len(self.stack_files) >= limits.MAX_INPUT_DEPTH:
            raise TreeError(f"{where}: \\input{{{name}}} nests inputs deeper than "
                            f"{limits.MAX_INPUT_DEPTH}")
        try:
            size = path.stat().st_size
        except OSError as exc:
            raise TreeError(f"{where}: cannot read {name}: {exc.strerror}") from None
        if size > limits.MAX_TEX_BYTES:
            raise TreeError(f"{where}: {name} is {size} bytes; a tree file may hold at most "
                            f"{limits.MAX_TEX_BYTES // (1024 * 1024)} MiB")
        self.bytes_read += size
        if self.bytes_read > limits.MAX_TREE_BYTES:
            raise TreeError(f"{where}: reading {name} takes the tree past "
                            f"{limits.MAX_TREE_BYTES // (1024 * 1024)} MiB of text "
                            "(a file input over and over?)")
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            text = path.read_text(encoding="latin-1")
        except OSError as exc:
            raise TreeError(f"{where}: cannot read {name}: {exc.strerror}") from None
        src = SourceText(name, text)
        if name not in self.sources:
            self.files.append(name)
        self.sources[name] = src
        self.stack_files.append(name)
        self._scan(src)
        self.stack_files.pop()

    def _scan(self, src: SourceText) -> None:
        masked = src.masked
        for m in _TOKEN.finditer(masked):
            if m.group("kw"):
                self._keyword(src, m)
                continue
            cmd = m.group("cmd")[1:]
            end = m.end()
            if cmd in ("input", "include"):
                args = read_args(masked, end, 1)
                if args is None:
                    continue
                raw = src.text[args[0][0]:args[0][1]]
                if "#" in raw or "\\" in raw:
                    continue  # inside a macro definition
                name, path = _resolve_input(self.root, raw)
                where = str(src.position(m.start()))
                if not _inside(self.root, path):
                    # never read: the audit reports it (an outside file is not the tree's text)
                    self.outside_inputs.append(OutsideInput(raw, src.position(m.start())))
                    continue
                if not path.is_file():
                    if os.path.basename(name) in GENERATED_INPUTS:
                        self.missing_generated.append(name)
                        continue
                    raise TreeError(f"{where}: \\{cmd}{{{raw}}}: no such file in the tree")
                self.read_file(name, path, where)
            elif cmd in SECTION_LEVELS:
                args = read_args(masked, end, 1)
                if args is None:
                    continue
                a = args[0]
                self._heading("section", SECTION_LEVELS[cmd], src.text[a[0]:a[1]], src,
                              m.start(), a[1] + 1)
            elif cmd in NORMATIVE_PREFIX:
                self._normative(src, m, cmd)
            elif cmd == "conformance":
                args = read_args(masked, end, 2)
                if args is None:
                    continue
                level_cmd = src.text[args[0][0]:args[0][1]].strip().lstrip("\\")
                if level_cmd not in SECTION_LEVELS:
                    continue
                sec = self._heading("conformance", SECTION_LEVELS[level_cmd],
                                    src.text[args[1][0]:args[1][1]], src, m.start(),
                                    args[1][1] + 1)
                self.clause = ConformanceClause(title=sec.title, heading=sec)
                self.clauses.append(self.clause)
            elif cmd == "label":
                args = read_args(masked, end, 1)
                if args is None:
                    continue
                raw = src.text[args[0][0]:args[0][1]]
                if "#" in raw:
                    continue
                name = normalise_space(raw)
                pos = src.position(args[0][0])
                self._attach_label(src, m.start(), name, pos, args[0][1] + 1)
                self.labels.append(Label(name, pos, self.open[-1] if self.open else None))
            elif cmd in REF_COMMANDS:
                i = skip_space(masked, end)
                args = read_args(masked, i, 1)
                if args is None:
                    continue
                raw = src.text[args[0][0]:args[0][1]]
                if "#" in raw:
                    continue
                ref = Ref(normalise_space(raw), cmd, src.position(args[0][0]), args[0][0])
                self.refs.append(ref)
                if self.clause is not None and cmd == "ref":
                    self.clause.items.append(ref)
            elif cmd == "hyperref":
                opt = read_optional(masked, skip_space(masked, end))
                if opt is None:
                    continue  # \hyperref{url}{...}: not a label
                raw = src.text[opt[0]:opt[1]]
                if "#" not in raw:
                    self.refs.append(Ref(normalise_space(raw), cmd, src.position(opt[0]), opt[0]))
            elif cmd == "item":
                self._item(src, m)
            elif cmd == "begin":
                args = read_args(masked, end, 1)
                if args is None:
                    continue
                env = src.text[args[0][0]:args[0][1]].strip()
                if env == "lstlisting":
                    self._listing_label(src, args[0][1] + 1)
                if env in LIST_ENVS:
                    lst = ListEnv(env=env, file=src.name, offset=m.start(), end_offset=-1,
                                  pos=src.position(m.start()),
                                  section=self.open[-1] if self.open else None,
                                  depth=len(self.list_stack))
                    self.list_stack.append(lst)
                    self.lists.append(lst)
            elif cmd == "end":
                args = read_args(masked, end, 1)
                if args is None:
                    continue
                env = src.text[args[0][0]:args[0][1]].strip()
                if env in LIST_ENVS and self.list_stack and self.list_stack[-1].env == env \
                        and self.list_stack[-1].file == src.name:
                    lst = self.list_stack.pop()
                    lst.end_offset = m.start()
                    if lst.items:
                        lst.items[-1].end_offset = m.start()
            elif cmd == "appendix":
                self.appendix = True

    def _normative(self, src: SourceText, m: re.Match, cmd: str) -> None:
        args = read_args(src.masked, m.end(), 3)
        if args is None:
            return
        level_cmd = src.text[args[0][0]:args[0][1]].strip().lstrip("\\")
        if level_cmd not in SECTION_LEVELS:
            return  # the macro's own definition in commands.tex
        role = NORMATIVE_PREFIX[cmd]
        title_tex = src.text[args[1][0]:args[1][1]]
        heading = self._heading("normative", SECTION_LEVELS[level_cmd],
                                f"{role.capitalize()} Requirements: {title_tex}", src,
                                m.start(), args[2][1] + 1)
        path = normalise_space(src.text[args[2][0]:args[2][1]])
        block = NormativeBlock(role=role, path=path, title=plain_title(title_tex),
                               heading=heading, path_pos=src.position(args[2][0]))
        heading.label = None
        self.blocks.append(block)
        self.blocks_open = [block]
        self.labels.append(Label(block.label, block.path_pos, heading))

    def _listing_label(self, src: SourceText, i: int) -> None:
        """`\\begin{lstlisting}[label={lst:...}]` defines a label too."""
        opt = read_optional(src.masked, i)
        if opt is None:
            return
        m = re.search(r"(?:^|,)\s*label\s*=\s*(\{)?", src.masked[opt[0]:opt[1]])
        if not m:
            return
        start = opt[0] + m.end()
        if m.group(1):
            close = src.masked.index("}", start)  # read_optional checked the nesting
        else:
            rest = src.masked[start:opt[1]]
            close = start + (rest.index(",") if "," in rest else len(rest))
        name = normalise_space(src.text[start:close]).strip()
        self.labels.append(Label(name, src.position(start), self.open[-1] if self.open else None))

    def _item(self, src: SourceText, m: re.Match) -> None:
        if not self.list_stack or self.list_stack[-1].file != src.name:
            return
        lst = self.list_stack[-1]
        i = skip_space(src.masked, m.end())
        opt = read_optional(src.masked, i)
        item = Item(file=src.name, offset=m.start(), pos=src.position(m.start()), opt=opt)
        if lst.items:
            lst.items[-1].end_offset = m.start()
        lst.items.append(item)

    def _keyword(self, src: SourceText, m: re.Match) -> None:
        word = " ".join(m.group("kw").split())
        kw = Keyword(word=word, pos=src.position(m.start()),
                     section=self.open[-1] if self.open else None,
                     block=self.blocks_open[0] if self.blocks_open else None)
        self.keywords.append(kw)
        for b in self.blocks_open:
            b.keywords.append(kw)


# -- allocation list and feature definitions --------------------------------

_RANGE = re.compile(r"(\d+)\s*(?:(?:to|-|--)\s*(\d+)|(and\s+above|or\s+above|\+))?")


def parse_bit_ranges(text: str) -> list[BitRange] | None:
    """'0 to 23, 41, 42 and 50 to 127' -> ranges; None if the text is not a bit list."""
    parts = re.split(r",|\band\b(?!\s+above)", text)
    ranges: list[BitRange] = []
    for part in parts:
        part = part.strip()
        if not part:
            continue
        m = _RANGE.fullmatch(part)
        if not m:
            return None
        first = int(m.group(1))
        if m.group(3):
            ranges.append(BitRange(first, None))
        else:
            ranges.append(BitRange(first, int(m.group(2)) if m.group(2) else first))
    return ranges or None


def _category(body: str) -> str | None:
    b = " ".join(body.lower().split())
    if "device type" in b:
        return "device"
    if "future" in b:
        return "future"
    if "extension" in b or "negotiation" in b:
        return "extensions"
    return None


def _allocation(sources: dict[str, SourceText], lists: list[ListEnv]
                ) -> tuple[ListEnv | None, list[AllocationItem]]:
    """The first description list whose every item label is a list of bit ranges."""
    for lst in lists:
        if lst.env != "description" or not lst.items:
            continue
        src = sources[lst.file]
        found: list[AllocationItem] = []
        for it in lst.items:
            label = it.opt_text(src)
            if label is None:
                break
            ranges = parse_bit_ranges(plain_title(label))
            body = src.masked[it.opt[1] + 1:it.end_offset]
            cat = _category(body)
            if ranges is None or cat is None:
                break
            found.append(AllocationItem(cat, ranges, it, label))
        else:
            return lst, found
    return None, []


def _features(sources: dict[str, SourceText], lists: list[ListEnv]) -> list[FeatureDef]:
    feats: list[FeatureDef] = []
    for lst in lists:
        src = sources[lst.file]
        for it in lst.items:
            label = it.opt_text(src)
            if label is None:
                continue
            m = _FEATURE_ITEM.match(plain_title(label))
            if not m:
                continue
            name, prefix, bit = m.group(1), m.group(2), int(m.group(3))
            sec = lst.section
            if prefix is None:
                scope = "device-independent"
            else:
                scope = _device_scope(sec) or prefix
            legacy = False
            s = sec
            while s is not None:
                if s.title.lower().startswith("legacy interface"):
                    legacy = True
                s = s.parent
            feats.append(FeatureDef(name, bit, scope, src.position(it.opt[0]), it, sec, legacy))
    return feats


def _device_scope(sec: Section | None) -> str | None:
    """The device a definition belongs to: its section path below 'Device Types'."""
    if sec is None:
        return None
    path = sec.path
    if len(path) >= 2 and path[0] == "Device Types":
        return " / ".join(path[:2])
    return None


def load_tree(root: str | os.PathLike) -> SpecTree:
    """Read the spec tree at `root`; raise TreeError (one line) if it is not one."""
    rootp = Path(root)
    if not rootp.exists():
        raise TreeError(f"{root}: no such directory")
    if not rootp.is_dir():
        raise TreeError(f"{root}: not a directory")
    if not is_spec_tree(rootp):
        raise TreeError(f"{root}: not a virtio spec tree (no {TOP_FILE} and commands.tex)")
    r = _Reader(rootp)
    r.read_file(TOP_FILE, rootp / TOP_FILE, str(rootp))
    if r.list_stack:
        lst = r.list_stack[-1]
        raise TreeError(f"{lst.pos}: \\begin{{{lst.env}}} is never closed")
    for s in r.open:
        s.end_offset = len(r.sources[s.file].text)
    if not r.sections:
        raise TreeError(f"{root}: {TOP_FILE} reads no sections: not a spec tree the reader can follow")
    alloc_list, alloc = _allocation(r.sources, r.lists)
    return SpecTree(root=rootp, files=r.files, sources=r.sources, sections=r.sections,
                    blocks=r.blocks, clauses=r.clauses, labels=r.labels, refs=r.refs,
                    lists=r.lists, allocation=alloc, allocation_list=alloc_list,
                    features=_features(r.sources, r.lists), keywords=r.keywords,
                    missing_generated=r.missing_generated, outside_inputs=r.outside_inputs)
