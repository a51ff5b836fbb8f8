"""Mechanical fixes for what `specc audit` finds, as commits of a patch series.

Three kinds of finding have one obviously right fix:

* a normative block whose label differs from its section's label only in
  letter case (`label-case-typo`): the block takes the section's spelling,
  and every reference to the old spelling follows;
* a conformance item naming a block label in the wrong letter case
  (`conformance-item-dangling` with exactly one block of that spelling
  but for case): the item takes the block's spelling;
* a normative block no conformance clause lists (`block-unlisted`): the
  clause of the same role that already lists the blocks nearest to it (by
  section path) gets an `\\item \\ref{...}` for it, next to the nearest one.

Everything is computed from the tree and the findings; `plan_fixes` returns
`PlannedCommit`s for specc.patch.series.write_commits. Each commit message
says what was wrong, where, and that the audit found it.
"""
from __future__ import annotations

import textwrap
from collections import defaultdict
from dataclasses import dataclass

from specc.audit.checks import Finding
from specc.patch.anchors import Located
from specc.patch.edit import Edit
from specc.patch.series import CommitText, PlannedCommit
from specc.upstream.source import SourceText
from specc.upstream.tree import ConformanceClause, NormativeBlock, Ref, SpecTree

FIXABLE = ("label-case-typo", "conformance-item-dangling", "block-unlisted")
WIDTH = 72


@dataclass(frozen=True)
class Rename:
    block: NormativeBlock
    old: str                       # full label, e.g. devicenormative:A / b
    new: str


def _fill(text: str) -> str:
    return textwrap.fill(" ".join(text.split()), WIDTH, break_on_hyphens=False)


def _offset(src: SourceText, line: int, col: int) -> int:
    return src.line_starts[line - 1] + col - 1


def area_of(file: str) -> str:
    """The subject prefix upstream uses for a file: the device directory for a
    device type (device-types/net/... -> net), else the file's stem."""
    parts = file.split("/")
    if len(parts) >= 3 and parts[0] == "device-types":
        return parts[1]
    return parts[-1].removesuffix(".tex")


def _where(f: Finding) -> str:
    return f"{f.pos.file}:{f.pos.line}"


# -- label case ---------------------------------------------------------------------

def _expected_path(b: NormativeBlock) -> str | None:
    sec = b.enclosing
    return sec.label if sec is not None else None


def _label_edit(tree: SpecTree, r: Rename) -> Edit | None:
    """Replace the whole macro call (or hand-written \\label) that sets the old label."""
    b = r.block
    src = tree.sources[b.path_pos.file]
    text = src.text
    start_path = _offset(src, b.path_pos.line, b.path_pos.col)
    close = text.find("}", start_path)
    if close < 0:
        return None
    if b.hand_written:
        start = text.rfind("\\label{", 0, start_path)
        new = "\\label{" + r.new + "}"
    else:
        start = b.heading.offset
        new = text[start:start_path] + r.new[len(b.role + "normative:"):] + "}"
    old_text = text[start:close + 1]
    if start < 0 or r.old.split(":", 1)[1] not in " ".join(old_text.split()):
        return None
    return Edit(src.name, Located(start, close + 1, f"the label '{r.old}'"), new,
                area_of(src.name), "replace")


def _ref_edit(tree: SpecTree, ref: Ref, new: str) -> Edit | None:
    src = tree.sources[ref.pos.file]
    text = src.text
    close = text.find("}" if ref.command != "hyperref" else "]", ref.offset)
    start = text.rfind("\\" + ref.command, 0, ref.offset)
    if close < 0 or start < 0:
        return None
    opener = text[start:ref.offset]
    return Edit(src.name, Located(start, close + 1, f"\\{ref.command}{{{ref.target}}}"),
                opener + new + text[close], area_of(src.name), "replace")


def _renames(tree: SpecTree, findings: list[Finding]) -> list[Rename]:
    by_label = defaultdict(list)
    for b in tree.blocks:
        by_label[b.label].append(b)
    out: list[Rename] = []
    for f in findings:
        if f.code != "label-case-typo":
            continue
        for b in by_label.get(f.name, []):
            path = _expected_path(b)
            if path is None or path.lower() != b.path.lower() or path == b.path:
                continue
            out.append(Rename(b, b.label, f"{b.role}normative:{path}"))
    return out


def _rename_commits(tree: SpecTree, renames: list[Rename],
                    findings: list[Finding]) -> list[PlannedCommit]:
    groups: dict[str, list[Rename]] = defaultdict(list)
    for r in renames:
        groups[r.new.split(":", 1)[1]].append(r)
    where = {f.name: _where(f) for f in findings if f.code == "label-case-typo"}
    commits = []
    for path, rs in groups.items():
        edits: list[Edit] = []
        for r in rs:
            e = _label_edit(tree, r)
            if e is None:
                break
            edits.append(e)
            edits += [x for x in (_ref_edit(tree, ref, r.new) for ref in tree.refs
                                  if ref.target == r.old) if x is not None]
        else:
            first = rs[0]
            section = path.split(" / ")[-1]
            labels = " and ".join(f"'{r.old}'" for r in rs)
            nrefs = sum(1 for r in rs for ref in tree.refs if ref.target == r.old)
            body = [_fill(
                f"The requirement block{'s' if len(rs) > 1 else ''} of section '{path}' "
                f"carr{'y' if len(rs) > 1 else 'ies'} the label{'s' if len(rs) > 1 else ''} "
                f"{labels}, which differ{'' if len(rs) > 1 else 's'} from the section's own "
                f"label 'sec:{path}' only in letter case. Labels are case-sensitive, so a "
                "reference written after the section's spelling finds no block, and tools "
                "that pair blocks with their sections by label do not pair these."),
                _fill(f"Use the section's spelling"
                      + (f" and update the {nrefs} reference{'s' if nrefs != 1 else ''} to the "
                         "old one" if nrefs else "")
                      + "; the printed headings do not change."),
                _fill("Found by specc audit (label-case-typo) at "
                      + ", ".join(where.get(r.old, r.block.path_pos.file) for r in rs) + ".")]
            commits.append(PlannedCommit(
                area_of(first.block.path_pos.file),
                CommitText(f"fix the letter case of the {section} requirement labels",
                           "\n\n".join(body)),
                tuple(edits)))
    return commits


# -- conformance items that miss their block by letter case --------------------------

def _item_commits(tree: SpecTree, findings: list[Finding],
                  renames: list[Rename]) -> tuple[list[PlannedCommit], set[str]]:
    """A clause item naming a block label in the wrong letter case gets the
    block's spelling (after the renames: an item the rename fixes is left).
    Also returns the labels the fixed items now list."""
    labels = {b.label for b in tree.blocks}
    labels = (labels - {r.old for r in renames}) | {r.new for r in renames}
    by_lower: dict[str, list[str]] = defaultdict(list)
    for lab in labels:
        by_lower[lab.lower()].append(lab)
    refs = {(ref.pos.file, ref.pos.line, ref.pos.col): ref for c in tree.clauses
            for ref in c.items}
    commits = []
    fixed: set[str] = set()
    for f in findings:
        if f.code != "conformance-item-dangling" or f.name in labels:
            continue
        ref = refs.get((f.pos.file, f.pos.line, f.pos.col))
        right = by_lower.get(f.name.lower(), [])
        if ref is None or len(right) != 1:
            continue
        edit = _ref_edit(tree, ref, right[0])
        if edit is None:
            continue
        section = right[0].split(" / ")[-1]
        body = [_fill(f"A conformance clause lists '{f.name}', which names no normative "
                      f"block: the block's label is '{right[0]}', which differs only in "
                      "letter case, and labels are case-sensitive, so the item points "
                      "nowhere and the block counts as unlisted."),
                _fill("Use the block's spelling."),
                _fill(f"Found by specc audit (conformance-item-dangling) at {_where(f)}.")]
        commits.append(PlannedCommit(area_of(ref.pos.file),
                                     CommitText(f"fix the letter case of the {section} item",
                                                "\n\n".join(body)),
                                     (edit,)))
        fixed.add(right[0])
    return commits, fixed


# -- conformance lists ----------------------------------------------------------------

def _common(a: str, b: str) -> int:
    n = 0
    for x, y in zip(a.split(" / "), b.split(" / ")):
        if x != y:
            break
        n += 1
    return n


def _best_place(tree: SpecTree, label: str) -> tuple[ConformanceClause, Ref] | None:
    """The clause of the label's role that lists the block nearest to it, and
    the nearest item there (the last of equally near ones); when no listed
    block shares even a chapter with it, the end of the clause that lists
    the most blocks of that role (the general one)."""
    role_prefix, path = label.split(":", 1)
    best: tuple[int, ConformanceClause, Ref] | None = None
    widest: tuple[int, ConformanceClause, Ref] | None = None
    for c in tree.clauses:
        mine = [ref for ref in c.items if ref.target.startswith(role_prefix + ":")]
        if mine and (widest is None or len(mine) > widest[0]):
            widest = (len(mine), c, mine[-1])
        for ref in mine:
            score = _common(ref.target.split(":", 1)[1], path)
            if score > 0 and (best is None or score >= best[0]):
                best = (score, c, ref)
    chosen = best or widest
    return None if chosen is None else (chosen[1], chosen[2])


def _list_edit(tree: SpecTree, ref: Ref, label: str) -> Edit:
    src = tree.sources[ref.pos.file]
    text = src.text
    line_start = src.line_starts[ref.pos.line - 1]
    line_end = text.find("\n", ref.offset)
    line_end = len(text) if line_end < 0 else line_end + 1
    line = text[line_start:line_end]
    indent = line[:len(line) - len(line.lstrip())]
    return Edit(src.name, Located(line_end, line_end, f"after the line of \\ref{{{ref.target}}}"),
                f"{indent}\\item \\ref{{{label}}}\n", area_of(src.name), "after")


def _list_commits(tree: SpecTree, findings: list[Finding], renames: list[Rename],
                  fixed_items: set[str]) -> list[PlannedCommit]:
    new_name = {r.old: r.new for r in renames}
    blocks = {b.label: b for b in tree.blocks}
    listed = {ref.target for c in tree.clauses for ref in c.items} | fixed_items
    groups: dict[str, list[tuple[Finding, str]]] = defaultdict(list)
    for f in findings:
        if f.code == "block-unlisted" and f.name in blocks:
            label = new_name.get(f.name, f.name)
            if label in listed:
                continue        # the clause lists the section's spelling: the rename fixes it
            groups[label.split(":", 1)[1]].append((f, label))
    commits = []
    for path, items in groups.items():
        edits, clauses, found = [], [], []
        for f, label in items:
            place = _best_place(tree, label)
            if place is None:
                continue
            clause, near = place
            edits.append(_list_edit(tree, near, label))
            clauses.append(f"'{clause.title}' (next to {near.target.split(':', 1)[1]})")
            found.append(_where(f))
        if not edits:
            continue
        roles = " and ".join(sorted({label.split("normative:")[0] for _, label in items}))
        section = path.split(" / ")[-1]
        body = [_fill(f"The {roles} requirements of section '{path}' are listed by no "
                      "conformance clause, so an implementation can claim conformance "
                      "without meeting them."),
                _fill("List them in " + " and ".join(clauses) + ", the clause that already "
                      "lists the requirements of the nearest sections."),
                _fill("Found by specc audit (block-unlisted) at " + ", ".join(found) + ".")]
        commits.append(PlannedCommit("conformance" if all(e.file == "conformance.tex"
                                                           for e in edits)
                                     else area_of(edits[0].file),
                                     CommitText(f"list the {section} requirements",
                                                "\n\n".join(body)),
                                     tuple(edits)))
    return commits


def plan_fixes(tree: SpecTree, findings: list[Finding]) -> list[PlannedCommit]:
    """Commits fixing the fixable findings: label case first (the conformance
    items then use the corrected labels), then clause items in the wrong
    case, then the missing conformance items."""
    renames = _renames(tree, findings)
    items, fixed_items = _item_commits(tree, findings, renames)
    return (_rename_commits(tree, renames, findings) + items
            + _list_commits(tree, findings, renames, fixed_items))
