"""Audit an upstream virtio spec tree: the checks behind `specc audit`.

Pure functions from a `SpecTree` (specc.upstream.tree) to a list of
`Finding`s. Each finding carries the place the author has to edit and the
offending name; the command prints them as `file:line:col: severity: message`.
"""
from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import asdict, dataclass

from specc.upstream.source import Position
from specc.upstream.tree import FeatureDef, Keyword, NormativeBlock, Section, SpecTree

# Labels that packages loaded by virtio.tex define without a \label in the tree.
PACKAGE_LABELS = {"lastpage": ("LastPage",)}

NORMATIVE_PREFIXES = ("drivernormative:", "devicenormative:")


@dataclass(frozen=True)
class Finding:
    pos: Position
    severity: str                  # "warning" | "error"
    code: str
    message: str
    name: str                      # the offending label, feature or keyword

    def format(self) -> str:
        return f"{self.pos}: {self.severity}: {self.message}"

    def as_json(self) -> dict:
        d = asdict(self)
        pos = d.pop("pos")
        return {"file": pos["file"], "line": pos["line"], "col": pos["col"], **d}


# -- conformance ------------------------------------------------------------

def _case_hint(wrong: str, candidates: list[str]) -> str | None:
    low = wrong.lower()
    for c in candidates:
        if c != wrong and c.lower() == low:
            return c
    return None


def check_conformance(tree: SpecTree) -> list[Finding]:
    """Blocks no clause lists, and clause items that point at no block."""
    out: list[Finding] = []
    block_labels = [b.label for b in tree.blocks]
    known = set(block_labels)
    listed: set[str] = set()
    for clause in tree.clauses:
        for ref in clause.items:
            if not ref.target.startswith(NORMATIVE_PREFIXES):
                continue
            if ref.target in known:
                listed.add(ref.target)
                continue
            hint = _case_hint(ref.target, block_labels)
            msg = (f"conformance clause '{clause.title}' lists '{ref.target}', "
                   f"which is no normative block")
            if hint:
                msg += f" (probable typo: differs only in letter case from '{hint}')"
            out.append(Finding(ref.pos, "error", "conformance-item-dangling", msg, ref.target))
    seen: set[str] = set()
    for b in tree.blocks:
        if b.label in listed or b.label in seen:
            continue
        seen.add(b.label)
        out.append(Finding(b.path_pos, "warning", "block-unlisted",
                           f"normative block '{b.label}' is listed by no conformance clause",
                           b.label))
    return out


# -- labels and references --------------------------------------------------

def label_path(sec: Section) -> str:
    """A section's path as labels spell it: its own sec: label, or (unlabelled)
    its parent's path followed by its title."""
    if sec.label is not None:
        return sec.label
    if sec.parent is None:
        return sec.title
    return label_path(sec.parent) + " / " + sec.title


def _section_path(sec: Section) -> tuple[str, str]:
    """The path a block inside `sec` is expected to carry, and where it comes from."""
    if sec.label is not None:
        return sec.label, "label"
    return label_path(sec), "path"


def _first_case_only_component(a: str, b: str) -> tuple[str, str] | None:
    """The first path component that differs between a and b only in letter case."""
    for x, y in zip(a.split(" / "), b.split(" / ")):
        if x != y:
            return (x, y) if x.lower() == y.lower() else None
    return None


def check_block_paths(tree: SpecTree) -> list[Finding]:
    out: list[Finding] = []
    for b in tree.blocks:
        sec = b.enclosing
        if sec is None:
            continue
        expected, source = _section_path(sec)
        title_path = " / ".join(sec.path)
        if b.path in (expected, title_path):
            continue
        if b.path.lower() in (expected.lower(), title_path.lower()):
            out.append(Finding(b.path_pos, "error", "label-case-typo",
                               f"'{b.label}' differs only in letter case from the enclosing "
                               f"section's {source} '{expected}' (probable typo)", b.label))
            continue
        msg = (f"'{b.label}' does not match the enclosing section's {source} "
               f"'{expected}'")
        if expected != title_path:
            msg += f" (title path '{title_path}')"
        typo = _first_case_only_component(b.path, expected) or \
            _first_case_only_component(b.path, title_path)
        if typo:
            msg += f"; '{typo[0]}' differs only in letter case from '{typo[1]}' (probable typo)"
        out.append(Finding(b.path_pos, "warning", "label-path-mismatch", msg, b.label))
    return out


def _package_labels(tree: SpecTree) -> set[str]:
    top = tree.sources.get("virtio.tex")
    found: set[str] = set()
    if top is None:
        return found
    for pkg, labels in PACKAGE_LABELS.items():
        if re.search(r"\\usepackage(\[[^\]]*\])?\{[^}]*\b" + pkg + r"\b", top.masked):
            found.update(labels)
    return found


def check_labels(tree: SpecTree) -> list[Finding]:
    """Duplicate labels and references to labels that do not exist."""
    out: list[Finding] = []
    first: dict[str, Position] = {}
    for lab in tree.labels:
        if lab.name in first:
            out.append(Finding(lab.pos, "error", "label-duplicate",
                               f"label '{lab.name}' is already defined at {first[lab.name]}",
                               lab.name))
        else:
            first[lab.name] = lab.pos
    defined = set(first) | _package_labels(tree)
    clause_items = {id(r) for c in tree.clauses for r in c.items
                    if r.target.startswith(NORMATIVE_PREFIXES)}
    names = list(first)
    for ref in tree.refs:
        if ref.target in defined or id(ref) in clause_items:
            continue  # clause items are checked (once) by check_conformance
        msg = f"\\{ref.command}{{{ref.target}}} refers to a label that does not exist"
        hint = _case_hint(ref.target, names)
        if hint:
            msg += f" (probable typo: differs only in letter case from '{hint}')"
        out.append(Finding(ref.pos, "error", "reference-undefined", msg, ref.target))
    return out


# -- feature bits -----------------------------------------------------------

_CATEGORY_TEXT = {"device": "device-type bits",
                  "extensions": "device-independent extension bits",
                  "future": "bits reserved for future extensions"}


def check_features(tree: SpecTree) -> list[Finding]:
    out: list[Finding] = []
    if not tree.allocation:
        return out
    by_scope: dict[tuple[str, int], FeatureDef] = {}
    for f in tree.features:
        key = (f.scope, f.bit)
        if key in by_scope:
            other = by_scope[key]
            out.append(Finding(f.pos, "error", "feature-bit-collision",
                               f"{f.name} uses bit {f.bit}, already used by {other.name} "
                               f"({other.pos}) in scope '{f.scope}'", f.name))
        else:
            by_scope[key] = f
        cats = [a for a in tree.allocation if a.covers(f.bit)]
        if not cats:
            out.append(Finding(f.pos, "error", "feature-bit-unallocated",
                               f"{f.name} uses bit {f.bit}, outside every range of the "
                               f"feature bit allocation list", f.name))
            continue
        cat = cats[0]
        where = f"{_CATEGORY_TEXT[cat.category]} ({cat.text.strip()}, {cat.item.pos})"
        independent = f.scope == "device-independent"
        if cat.category == "future":
            # reserved whatever the feature's scope
            out.append(Finding(f.pos, "error", "bit-reserved-for-future",
                               f"{f.name} uses bit {f.bit}, which the allocation list "
                               f"keeps as {where}", f.name))
        elif independent and cat.category == "device":
            out.append(Finding(f.pos, "error", "independent-bit-in-device-range",
                               f"device-independent {f.name} uses bit {f.bit}, which the "
                               f"allocation list gives to {where}", f.name))
        elif not independent and cat.category == "extensions":
            out.append(Finding(f.pos, "error", "device-bit-in-independent-range",
                               f"device-type feature {f.name} uses bit {f.bit}, which the "
                               f"allocation list gives to {where}", f.name))
    return out


# -- RFC 2119 keywords ------------------------------------------------------

def _conformance_listed_sections(tree: SpecTree) -> set[int]:
    """Sections (ids) a conformance clause refers to, and their subsections.

    The legacy-interface clause lists whole sections (`\\ref{sec:...}`) as
    where its requirements live, and points at the legacy terminology
    (`\\ref{intro:...}`), so keywords there are inside a normative region."""
    listed: set[str] = {r.target for c in tree.clauses for r in c.items}
    ids: set[int] = set()
    for s in tree.sections:
        t = s
        while t is not None:
            if t.label_name is not None and t.label_name in listed:
                ids.add(id(s))
                break
            t = t.parent
    return ids


def keyword_scope(tree: SpecTree, kw: Keyword, listed: set[int],
                  conformance_chapters: set[int]) -> bool:
    """Whether an upper-case keyword outside a normative block is reported.

    Not reported: front matter and appendices (informative), the conformance
    chapter (its clauses are the requirements), sections a clause lists,
    and keywords written in quotes (``MUST''), which mention a word rather than use it."""
    if kw.block is not None or kw.section is None:
        return False
    if kw.section.appendix or id(kw.section.chapter) in conformance_chapters:
        return False
    if id(kw.section) in listed:
        return False
    return True


def _quoted(tree: SpecTree, kw: Keyword) -> bool:
    src = tree.sources[kw.pos.file]
    start = src.line_starts[kw.pos.line - 1] + kw.pos.col - 1
    before = src.text[max(0, start - 2):start]
    after_i = start + len(kw.word)
    # the keyword may span a line break ("MUST\nNOT"): find its real end
    m = re.match(r"[A-Z]+(?:\s+[A-Z]+)?", src.text[start:start + 40])
    if m:
        after_i = start + m.end()
    after = src.text[after_i:after_i + 2]
    return (before == "``" and after == "''") or (before.endswith('"') and after.startswith('"'))


def check_keywords(tree: SpecTree) -> list[Finding]:
    out: list[Finding] = []
    listed = _conformance_listed_sections(tree)
    conf_chapters = {id(c.heading.chapter) for c in tree.clauses}
    for kw in tree.keywords:
        if not keyword_scope(tree, kw, listed, conf_chapters) or _quoted(tree, kw):
            continue
        where = " / ".join(kw.section.path)
        out.append(Finding(kw.pos, "warning", "keyword-outside-block",
                           f"RFC 2119 keyword {kw.word} outside any normative block "
                           f"(in section '{where}')", kw.word))
    for b in tree.blocks:
        if not b.keywords:
            out.append(Finding(b.path_pos, "warning", "block-without-keyword",
                               f"normative block '{b.label}' has no RFC 2119 keyword",
                               b.label))
    return out


def check_inputs(tree: SpecTree) -> list[Finding]:
    """Inputs that name a file outside the tree (``../x``, an absolute path, a symlink out)."""
    return [Finding(i.pos, "error", "input-outside-tree",
                    f"\\input{{{i.name}}} names a file outside the tree; not read", i.name)
            for i in tree.outside_inputs]


CHECKS = (check_inputs, check_conformance, check_block_paths, check_labels, check_features,
          check_keywords)


def audit(tree: SpecTree) -> list[Finding]:
    """Every finding, in the order the build reads the files."""
    findings: list[Finding] = []
    for check in CHECKS:
        findings.extend(check(tree))
    order = {name: i for i, name in enumerate(tree.files)}
    findings.sort(key=lambda f: (order.get(f.pos.file, len(order)), f.pos.line, f.pos.col,
                                 f.code))
    return findings


def summarise(findings: list[Finding]) -> dict[str, int]:
    counts: dict[str, int] = defaultdict(int)
    for f in findings:
        counts[f.code] += 1
    return dict(sorted(counts.items()))
