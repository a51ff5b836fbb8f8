"""Checks of modules against the upstream tree they target (`specc check
--spec-tree`, and always in `specc patch`).

A proposal must not define again what the tree already has: a structure, a
value of a constant group (a PCI cfg_type), a label, a section title, a
feature name or bit. It reuses (`reuse struct`) or amends (`amend`) it
instead. Each finding points at the module's line and names the upstream
file and line. Amendments are applied here too, so a fragment that matches
nothing, or more than one passage, is reported with its candidates before
any patch is written.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

from specc.amend import AmendError, apply_amendment
from specc.diagnostics import Diagnostic, error
from specc.emit.latex import LatexError, RefIndex
from specc.model import DEVICE_INDEPENDENT, Module, Placement, reference_label
from specc.patch.anchors import AnchorError, resolve_anchor
from specc.patch.latex_edits import PlacementError, area_of, placement_edits
from specc.upstream.source import Position
from specc.upstream.tree import SpecTree

# Constant groups whose values the tree lists as #define lines: group -> pattern.
CONSTANT_PATTERNS = {
    "pci-cfg-type": re.compile(r"^\s*#define\s+(VIRTIO_PCI_CAP_\w+_CFG)\s+(\d+)\s*$", re.M),
}
_STRUCT_START = re.compile(r"^\s*struct\s+([A-Za-z_]\w*)\s*\{", re.M)
_FIELD = re.compile(r"^\s*(?:struct\s+([A-Za-z_]\w*)|[A-Za-z_]\w*)\s+([A-Za-z_]\w*)\s*(?:\[[^\]]*\])?\s*;")


@dataclass
class TreeFacts:
    """What the tree defines, each with where: structures and their fields,
    constant values by group, labels, section title paths, features."""
    structs: dict[str, Position] = field(default_factory=dict)
    struct_fields: dict[str, list[tuple[str, str | None]]] = field(default_factory=dict)
    constants: dict[str, dict[int, tuple[str, Position]]] = field(default_factory=dict)
    labels: dict[str, Position] = field(default_factory=dict)
    titles: dict[str, tuple[str, Position]] = field(default_factory=dict)   # lower path -> path

    def fields_of(self, name: str, depth: int = 0) -> set[str]:
        """Field names of a structure, those of an embedded structure included."""
        out: set[str] = set()
        for fname, inner in self.struct_fields.get(name, ()):
            out.add(fname)
            if inner and depth < 4:
                out |= self.fields_of(inner, depth + 1)
        return out


def tree_facts(tree: SpecTree) -> TreeFacts:
    facts = TreeFacts()
    for name in tree.files:
        src = tree.sources.get(name)
        if src is None:
            continue
        for m in _STRUCT_START.finditer(src.text):
            sname = m.group(1)
            if sname in facts.structs:
                continue
            facts.structs[sname] = src.position(m.start(1))
            body_end = src.text.find("};", m.end())
            fields = []
            for line in src.text[m.end():body_end if body_end > 0 else m.end()].split("\n"):
                fm = _FIELD.match(line)
                if fm:
                    fields.append((fm.group(2), fm.group(1)))
            facts.struct_fields[sname] = fields
        for group, pattern in CONSTANT_PATTERNS.items():
            for m in pattern.finditer(src.text):
                facts.constants.setdefault(group, {}).setdefault(
                    int(m.group(2)), (m.group(1), src.position(m.start(1))))
    for lab in tree.labels:
        facts.labels.setdefault(lab.name, lab.pos)
    for s in tree.sections:
        if s.kind == "section":
            path = " / ".join(s.path)
            facts.titles.setdefault(path.lower(), (path, s.pos))
    return facts


def _at(p: Position) -> str:
    return f"{p.file}:{p.line}"


def check_against_tree(modules: list[Module], tree: SpecTree) -> list[Diagnostic]:
    facts = tree_facts(tree)
    idx = RefIndex.of(*modules)
    diags: list[Diagnostic] = []
    for m in modules:
        if m.kind != "proposal":
            continue
        _structs(m, facts, diags)
        _constants(m, facts, diags)
        _labels_and_titles(m, facts, diags)
        _features(m, tree, diags)
        for a in m.amendments:
            try:
                applied = apply_amendment(tree, a, idx)
                area_of(applied.passage.file)
            except AmendError as exc:
                diags.append(error(exc.message, exc.pos, hint=exc.hint(), width=exc.width))
            except PlacementError as exc:
                diags.append(error(f"the amended passage is in {exc}", a.pos))
        for p in m.placements:
            _placement(m, tree, p, idx, diags)
    return diags


def _placement(m: Module, tree: SpecTree, p: Placement, idx: RefIndex,
               diags: list[Diagnostic]) -> None:
    """Each placement's anchor must be in the tree (once), reported at its line."""
    try:
        for e in placement_edits(m, tree, p, idx):
            resolve_anchor(tree, e.file, e.anchor)
    except (PlacementError, AnchorError, LatexError) as exc:
        msg = str(exc)
        if "already defined upstream" in msg:
            return      # a taken bit or name: reported by the feature check, with its line
        if p.pos is not None and msg.startswith(f"{p.pos}: "):
            msg = msg[len(f"{p.pos}: "):]
        hint = None
        if p.anchor_kind == "text" and "not found" in msg:
            near = _nearest_lines(tree, p.file, p.anchor)
            if near:
                hint = "closest lines:\n" + "\n".join(f"    {n}" for n in near)
        diags.append(error(msg, p.pos, hint=hint))


def _nearest_lines(tree: SpecTree, file: str, text: str, n: int = 3) -> list[str]:
    src = tree.sources.get(file)
    if src is None:
        return []
    want = {w.lower() for w in re.findall(r"\w+", text)}
    scored = []
    for i, line in enumerate(src.text.split("\n"), 1):
        got = {w.lower() for w in re.findall(r"\w+", line)}
        if want & got:
            scored.append((-len(want & got), i, line.strip()))
    return [f"{file}:{i}: {line[:80]}" for _, i, line in sorted(scored)[:n]]


def _structs(m: Module, facts: TreeFacts, diags: list[Diagnostic]) -> None:
    for s in m.structs:
        where = facts.structs.get(s.name)
        if where is not None:
            diags.append(error(f"structure {s.name} is already defined upstream at {_at(where)}",
                               s.pos, width=len(s.name),
                               hint=f"use it as it is: reuse struct {s.name} {{ field NAME \"what "
                                    "this use puts in it\" ... }"))
    for r in m.reused:
        if r.name not in facts.structs:
            diags.append(error(f"reuse struct {r.name}: the tree defines no such structure", r.pos,
                               width=len(r.name), hint="declare it with `struct` instead"))
            continue
        known = facts.fields_of(r.name)
        for f in r.fills:
            if f.name not in known:
                diags.append(error(f"{r.name} (defined at {_at(facts.structs[r.name])}) has no "
                                   f"field {f.name}", f.pos, width=len(f.name),
                                   hint="its fields: " + ", ".join(sorted(known))))


def _constants(m: Module, facts: TreeFacts, diags: list[Diagnostic]) -> None:
    for c in m.constants:
        values = facts.constants.get(c.group or "")
        if not values:
            continue
        if c.value in values:
            name, where = values[c.value]
            free = max(values) + 1
            diags.append(error(f"{c.name} = {c.value} collides with {name}, defined upstream at "
                               f"{_at(where)}", c.pos, width=len(c.name),
                               hint=f"the next free value is {free}"))
        for value, (name, where) in values.items():
            if name == c.name and value != c.value:
                diags.append(error(f"{c.name} is already defined upstream at {_at(where)} "
                                   f"(value {value})", c.pos, width=len(c.name)))


def _labels_and_titles(m: Module, facts: TreeFacts, diags: list[Diagnostic]) -> None:
    for top in m.sections:
        for sec in top.walk():
            where = facts.labels.get(sec.label)
            if where is not None:
                diags.append(error(f"label '{sec.label}' is already defined upstream at {_at(where)}",
                                   sec.pos, hint="amend the upstream section instead of "
                                                 "defining it again"))
                continue
            same = facts.titles.get(sec.title_path.lower())
            if same is not None:
                diags.append(error(f"section '{sec.title_path}' already exists upstream as "
                                   f"'{same[0]}' at {_at(same[1])}", sec.pos,
                                   hint="pick another title, or amend the upstream section"))
        for b in top.blocks():
            where = facts.labels.get(b.label)
            if where is not None:
                diags.append(error(f"label '{b.label}' is already defined upstream at {_at(where)}",
                                   b.pos, hint="extend it with a top-level requirements block"))
    for r in m.references:
        where = facts.labels.get(reference_label(r.name))
        if where is not None:
            diags.append(error(f"reference {r.name} is already in the bibliography at {_at(where)}",
                               r.pos, width=len(r.name), hint=f"cite it as @cite({r.name})"))


def _features(m: Module, tree: SpecTree, diags: list[Diagnostic]) -> None:
    for f in m.features:
        same_name = [d for d in tree.features if d.name == f.name]
        if same_name:
            diags.append(error(f"feature {f.name} is already defined upstream at "
                               f"{_at(same_name[0].pos)}", f.pos, width=len(f.name)))
            continue
        if f.bit is None:
            continue
        if f.scope == DEVICE_INDEPENDENT:
            taken = [d for d in tree.features if d.bit == f.bit and d.scope == "device-independent"]
        else:
            taken = [d for d in tree.features if d.bit == f.bit and d.scope != "device-independent"
                     and d.scope.lower().split(" / ")[-1].startswith(f.scope.lower())]
        if taken:
            d = taken[0]
            legacy = " (legacy)" if d.legacy else ""
            diags.append(error(f"bit {f.bit} of {f.name} is already {d.name}{legacy}, defined "
                               f"upstream at {_at(d.pos)}", f.bit_pos or f.pos,
                               width=len(str(f.bit)) if f.bit_pos else len(f.name)))
