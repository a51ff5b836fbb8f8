"""Semantic checks over a set of modules checked together.

``check_modules(modules)`` returns diagnostics; it never raises for bad
input.  Every check is a function over the whole set with indexes built
once, so checking stays linear in the size of the spec.
"""
from __future__ import annotations

import difflib
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Iterable, Iterator

from specc import actions, known, limits
from specc.diagnostics import Diagnostic, error, warning
from specc.emit.escape import is_web_link, latex_label_ok, listing_text_ok
from specc.model import (DEVICE_INDEPENDENT, KEYWORDS, Amendment, Check, Constant, Feature,
                         Module, NormativeBlock, Note, Paragraph, Prose, Ref, ReusedStruct,
                         Section, SourcePos, Statement, Struct, StructRef, reference_label)

_UPPER_KEYWORDS = {"MUST", "MUST NOT", "SHOULD", "SHOULD NOT", "MAY", "SHALL", "SHALL NOT",
                   "REQUIRED", "RECOMMENDED", "OPTIONAL"}


def _is_feature_word(w: str) -> bool:
    return w.startswith("VIRTIO_")


def _is_slip(w: str) -> bool:
    return not _is_feature_word(w) and w not in _UPPER_KEYWORDS


@dataclass
class _Index:
    """Everything declared by the loaded modules, keyed for lookups."""
    features: dict[str, Feature] = field(default_factory=dict)
    feature_names: set[str] = field(default_factory=set)
    structs: dict[str, Struct] = field(default_factory=dict)
    reused: dict[str, ReusedStruct] = field(default_factory=dict)
    field_names: set[str] = field(default_factory=set)
    references: set[str] = field(default_factory=set)
    section_labels: dict[str, Section] = field(default_factory=dict)
    req_ids: dict[str, Statement] = field(default_factory=dict)   # ids and aliases
    upstream: known.UpstreamIndex | None = None


def check_modules(modules: Iterable[Module]) -> list[Diagnostic]:
    modules = list(modules)
    diags: list[Diagnostic] = []
    idx = _build_index(modules, diags)
    for m in modules:
        _check_header(m, diags)
        _check_features(m, idx, diags)
        _check_constants(m, diags)
        for s in m.structs:
            _check_struct(s, diags)
        _check_sections(m, idx, diags)
        _check_statements(m, idx, diags)
        _check_prose(m, idx, diags)
        _check_placement(m, idx, diags)
        _check_amendments(m, idx, diags)
        _check_rendered(m, diags)
    _check_cross_module_bits(modules, diags)
    _check_cross_module_constants(modules, diags)
    return diags


# ---- index and duplicate ids -------------------------------------------------

def _build_index(modules: list[Module], diags: list[Diagnostic]) -> _Index:
    idx = _Index(upstream=known.upstream())
    idx.feature_names = set(idx.upstream.feature_names())
    upstream_names = set(idx.feature_names)
    module_names: dict[str, Module] = {}
    block_labels: dict[str, NormativeBlock] = {}
    block_module: dict[str, Module] = {}
    check_ids: dict[str, Check] = {}
    for m in modules:
        if m.name in module_names:
            diags.append(error(f"duplicate module name '{m.name}'", m.pos,
                               hint=f"first declared at {module_names[m.name].pos}", width=len(m.name)))
        else:
            module_names[m.name] = m
        for f in m.features:
            if f.name in idx.features:
                diags.append(error(f"feature {f.name} is declared twice", f.pos,
                                   hint=f"first declared at {idx.features[f.name].pos}",
                                   width=len(f.name)))
                continue
            if f.name in upstream_names:
                diags.append(error(f"feature {f.name} already exists in {known.BASE}", f.pos,
                                   hint="pick a new name; restate upstream features in prose only",
                                   width=len(f.name)))
            idx.features[f.name] = f
            idx.feature_names.add(f.name)
        for s in m.structs:
            if s.name in idx.structs:
                diags.append(error(f"structure {s.name} is declared twice", s.pos,
                                   hint=f"first declared at {idx.structs[s.name].pos}", width=len(s.name)))
                continue
            idx.structs[s.name] = s
            idx.field_names.update(f.name for f in s.fields)
        for r in m.reused:
            if r.name in idx.structs:
                diags.append(error(f"structure {r.name} is both declared and reused", r.pos,
                                   hint=f"declared at {idx.structs[r.name].pos}; keep one",
                                   width=len(r.name)))
            elif r.name not in idx.reused:
                idx.reused[r.name] = r
        for ref in m.references:
            if ref.name in idx.references:
                diags.append(error(f"reference {ref.name} is declared twice", ref.pos,
                                   width=len(ref.name)))
            idx.references.add(ref.name)
        for sec in m.all_sections():
            if sec.label in idx.section_labels:
                diags.append(error(f"section '{sec.title_path}' is declared twice", sec.pos,
                                   hint=f"first declared at {idx.section_labels[sec.label].pos}"))
                continue
            idx.section_labels[sec.label] = sec
        for b in m.all_blocks():
            prev_b = block_labels.get(b.label)
            # Several modules may each add statements to (proposals) or restate
            # parts of (baselines) one upstream block; but a new block, or one
            # block written twice in a module, must be declared once.
            clash = prev_b is not None and (
                not (b.standalone and prev_b.standalone) or block_module.get(b.label) is m)
            if clash:
                diags.append(error(f"normative block '{b.label}' is declared twice", b.pos,
                                   hint=f"first declared at {block_labels[b.label].pos}; "
                                        "put all its statements in one block"))
            elif prev_b is None:
                block_labels[b.label] = b
                block_module[b.label] = m
            for st in b.statements:
                for name in (st.id,) + st.aliases:
                    prev = idx.req_ids.get(name)
                    if prev is not None:
                        what = "id" if name == st.id else "alias"
                        diags.append(error(f"duplicate requirement {what} '{name}'", st.pos,
                                           hint=f"already used by {prev.id} at {prev.pos}",
                                           width=len(st.id)))
                    else:
                        idx.req_ids[name] = st
                for c in st.checks:
                    if c.id in check_ids and check_ids[c.id] is not c:
                        pass  # same statement: reported by the parser
                    check_ids[c.id] = c
        for st in [a.statement for a in m.amendments if a.statement is not None] + list(m.citations):
            for name in (st.id,) + st.aliases:
                prev = idx.req_ids.get(name)
                if prev is not None:
                    diags.append(error(f"duplicate requirement id '{name}'", st.pos,
                                       hint=f"already used by {prev.id} at {prev.pos}",
                                       width=len(st.id)))
                else:
                    idx.req_ids[name] = st
    return idx


def _check_header(m: Module, diags: list[Diagnostic]) -> None:
    if m.base is not None and m.base != known.BASE:
        diags.append(warning(f"module targets '{m.base}' but the built-in tables describe {known.BASE}",
                             m.pos, hint="bit and label checks use the built-in release"))
    if m.fixes is not None and not is_web_link(m.fixes):
        diags.append(error(f"'fixes' is not a web link: {m.fixes[:80]!r}", m.pos,
                           hint="give the issue's https:// address; it becomes a Fixes: trailer"))
    if m.kind == "proposal" and m.base is None:
        diags.append(warning("proposal does not say which release it targets", m.pos,
                             hint=f'add: base "{known.BASE}"'))


# ---- features -------------------------------------------------------------------

def _check_features(m: Module, idx: _Index, diags: list[Diagnostic]) -> None:
    up = idx.upstream
    for f in m.features:
        width = len(f.name)
        if f.scope != DEVICE_INDEPENDENT:
            dtype = known.canonical_device_type(f.scope)
            if dtype not in up.device_types:
                near = difflib.get_close_matches(f.scope, sorted(up.device_types), 1)
                diags.append(error(f"unknown scope '{f.scope}' for {f.name}", f.pos, width=width,
                                   hint="scope is device-independent or a device type"
                                        + (f" (did you mean '{near[0]}'?)" if near else
                                           f": {', '.join(sorted(up.device_types))}")))
                continue
        if f.bit is None:
            continue
        bpos, bwidth = (f.bit_pos, len(str(f.bit))) if f.bit_pos else (f.pos, width)
        if f.bit > limits.MAX_FEATURE_BIT:
            diags.append(error(f"bit {f.bit} of {f.name} is beyond the feature bits specc "
                               f"handles (0 to {limits.MAX_FEATURE_BIT})", bpos, width=bwidth,
                               hint="upstream allocates bits 0 to 127; new device-independent "
                                    f"features take the lowest free of 44 to 49 ({_lowest_free()})"))
            continue
        if f.scope == DEVICE_INDEPENDENT:
            taken = known.DEVICE_INDEPENDENT_BITS.get(f.bit)
            if taken is not None:
                legacy = " (a legacy bit that transitional devices still offer)" if taken.legacy else ""
                diags.append(error(f"feature bit {f.bit} of {f.name} collides with {taken.name}"
                                   f"{legacy}, assigned in {known.BASE}", bpos, width=bwidth,
                                   hint=f"the lowest free device-independent bit is {_lowest_free()}"))
            elif not known.in_ranges(f.bit, known.DEVICE_INDEPENDENT_RANGES):
                diags.append(error(f"bit {f.bit} of device-independent feature {f.name} is outside the "
                                   "device-independent allocation", bpos, width=bwidth,
                                   hint=f"device-independent bits are {known.describe_ranges(known.DEVICE_INDEPENDENT_RANGES)}; "
                                        f"{known.describe_ranges(known.DEVICE_TYPE_RANGES)} belong to device types"))
            if not f.name.startswith("VIRTIO_F_"):
                diags.append(warning(f"device-independent feature {f.name} is not named VIRTIO_F_*",
                                     bpos, width=bwidth))
        else:
            dtype = known.canonical_device_type(f.scope)
            for name, bit in up.device_bits.get(dtype, {}).items():
                if bit == f.bit:
                    diags.append(error(f"feature bit {f.bit} of {f.name} collides with {name}, "
                                       f"assigned to {dtype} devices in {known.BASE}", bpos, width=bwidth))
                    break
            if not known.in_ranges(f.bit, known.DEVICE_TYPE_RANGES):
                diags.append(error(f"bit {f.bit} of {dtype} feature {f.name} is outside the "
                                   "device-type allocation", bpos, width=bwidth,
                                   hint=f"device-type bits are {known.describe_ranges(known.DEVICE_TYPE_RANGES)}"))
        for dep in f.requires + f.excludes:
            if dep not in idx.feature_names:
                diags.append(error(f"{f.name} names unknown feature {dep}", f.pos, width=width,
                                   hint=_near(dep, idx.feature_names)))
        if f.name in f.requires:
            diags.append(error(f"{f.name} requires itself", f.pos, width=width))
        both = set(f.requires) & set(f.excludes)
        if both:
            diags.append(error(f"{f.name} both requires and excludes {sorted(both)[0]}", f.pos, width=width))
        if not f.prose:
            diags.append(warning(f"feature {f.name} has no description", f.pos, width=width))


def _lowest_free() -> int:
    for bit in range(44, 50):
        if bit not in known.DEVICE_INDEPENDENT_BITS:
            return bit
    return 128


def _check_cross_module_bits(modules: list[Module], diags: list[Diagnostic]) -> None:
    owners: dict[tuple[str, int], tuple[Feature, Module]] = {}
    for m in modules:
        for f in m.features:
            if f.bit is None:
                continue
            scope = f.scope if f.scope == DEVICE_INDEPENDENT else known.canonical_device_type(f.scope)
            key = (scope, f.bit)
            prev = owners.get(key)
            if prev is not None and prev[0].name != f.name:
                where = "in the same module" if prev[1] is m else f"of module '{prev[1].name}'"
                diags.append(error(f"feature bit {f.bit} of {f.name} collides with {prev[0].name} "
                                   f"{where}", f.bit_pos or f.pos, width=len(str(f.bit)),
                                   hint=f"{prev[0].name} is declared at {prev[0].pos}"))
            else:
                owners.setdefault(key, (f, m))


def _check_constants(m: Module, diags: list[Diagnostic]) -> None:
    for c in m.constants:
        for p in c.prose:
            if not listing_text_ok(p.plain()):
                diags.append(error(f"the description of constant {c.name} holds \\end{{lstlisting}}",
                                   p.pos, hint="it is written as a comment inside an upstream "
                                   "listing, which that sequence would end; reword it"))
        if c.group is None:
            diags.append(warning(f"constant {c.name} has no 'group'", c.pos, width=len(c.name),
                                 hint="a group lets collisions be checked, e.g. group pci-cfg-type"))
            continue
        assigned = known.CONSTANT_GROUPS.get(c.group)
        if assigned is None:
            continue
        if c.value in assigned:
            free = next(v for v in range(1, 256) if v not in assigned)
            diags.append(error(f"{c.name} = {c.value} collides with {assigned[c.value]} in {known.BASE}",
                               c.pos, width=len(c.name), hint=f"the next free value is {free}"))
        lo, hi = known.CONSTANT_GROUP_LIMITS.get(c.group, (None, None))
        if lo is not None and not lo <= c.value <= hi:
            diags.append(error(f"{c.name} = {c.value} does not fit {c.group} ({lo} to {hi})",
                               c.pos, width=len(c.name)))


def _check_cross_module_constants(modules: list[Module], diags: list[Diagnostic]) -> None:
    seen: dict[tuple[str, int], Constant] = {}
    names: dict[str, Constant] = {}
    for m in modules:
        for c in m.constants:
            if c.name in names:
                diags.append(error(f"constant {c.name} is declared twice", c.pos, width=len(c.name),
                                   hint=f"first declared at {names[c.name].pos}"))
                continue
            names[c.name] = c
            if c.group is None:
                continue
            prev = seen.get((c.group, c.value))
            if prev is not None:
                diags.append(error(f"{c.name} = {c.value} collides with {prev.name} in group {c.group}",
                                   c.pos, width=len(c.name), hint=f"{prev.name} is declared at {prev.pos}"))
            else:
                seen[(c.group, c.value)] = c


# ---- structures -------------------------------------------------------------------

def _check_struct(s: Struct, diags: list[Diagnostic]) -> None:
    names: dict[str, SourcePos | None] = {}
    prev = None
    for f in s.fields:
        if f.name in names:
            diags.append(error(f"field '{f.name}' appears twice in {s.name}", f.pos, width=len(f.name),
                               hint=f"first at {names[f.name]}"))
        names[f.name] = f.pos
        if f.offset % f.elem_size:
            diags.append(error(f"{f.type} field '{f.name}' at offset {f.offset} is not aligned to "
                               f"{f.elem_size} bytes", f.pos, width=len(f.name),
                               hint="add reserved padding before it or move it"))
        if prev is not None and f.offset < prev.end:
            diags.append(error(f"field '{f.name}' (bytes {f.offset} to {f.end - 1}) overlaps "
                               f"'{prev.name}' (bytes {prev.offset} to {prev.end - 1})", f.pos,
                               width=len(f.name)))
        if prev is None or f.end > prev.end:
            prev = f
        if s.role == "registers" and f.access is None and not f.reserved:
            diags.append(warning(f"register '{f.name}' does not say its access", f.pos,
                                 width=len(f.name), hint="add read-only, write-only or read-write"))
    if s.declared_size is not None and s.size != s.declared_size:
        diags.append(error(f"{s.name} is declared as {s.declared_size} bytes but its fields "
                           f"take {s.size}", s.pos, width=len(s.name),
                           hint="fix the 'size', or add or remove reserved padding"))
    if not s.fields:
        diags.append(error(f"{s.name} has no fields", s.pos, width=len(s.name)))


# ---- sections -----------------------------------------------------------------------

def _check_sections(m: Module, idx: _Index, diags: list[Diagnostic]) -> None:
    up = idx.upstream
    for top in m.sections:
        if m.kind == "proposal" and top.label in up.labels:
            diags.append(error(f"section '{top.title_path}' already exists in {known.BASE}", top.pos,
                               hint="a proposal adds new sections; extend an existing block with a "
                                    "top-level requirements block instead"))
        if top.parent_given and len(top.path) > 1:
            parent = "sec:" + " / ".join(top.path[:-1])
            if parent not in up.labels and parent not in idx.section_labels:
                diags.append(error(f"unknown parent section '{' / '.join(top.path[:-1])}'", top.pos,
                                   hint=_near_label(parent, up.labels)))
        for sec in top.walk():
            if not latex_label_ok(sec.label):
                diags.append(error(f"section title '{sec.title[:80]}' holds a character that cannot "
                                   "appear in its upstream label (\\label{sec:...})", sec.pos,
                                   hint="labels are title paths typed verbatim: leave out "
                                        "\\ { } % # ~ ^ $ &"))
            deepest = len(sec.path) + any(isinstance(i, NormativeBlock) for i in sec.items)
            if deepest > limits.MAX_SECTION_DEPTH:
                diags.append(error(f"'{sec.title_path[:200]}' needs a heading {deepest} levels deep; "
                                   f"LaTeX has {limits.MAX_SECTION_DEPTH} (\\chapter to "
                                   "\\subparagraph)", sec.pos,
                                   hint="a requirements block takes the level below its section"))
            for item in sec.items:
                if isinstance(item, StructRef) and item.name not in idx.structs and \
                        item.name not in idx.reused:
                    diags.append(error(f"'show' names unknown structure {item.name}", item.pos,
                                       width=len(item.name), hint=_near(item.name, idx.structs)))
    for b in m.blocks:
        label = b.label
        if b.path != "?" and label not in up.labels:
            verb = "restates" if m.kind == "baseline" else "extends"
            diags.append(error(f"block {verb} '{label}', which is not a normative block of {known.BASE}",
                               b.pos, hint=_near_label(label, up.labels)))


# ---- statements ------------------------------------------------------------------------

def _check_statements(m: Module, idx: _Index, diags: list[Diagnostic]) -> None:
    for b in m.all_blocks():
        if not b.statements:
            diags.append(error(f"{b.role} requirements block '{b.path}' has no statements", b.pos))
        for st in b.statements:
            _check_statement(st, idx, diags)
    for st in m.citations:
        _check_citation(st, idx, diags)
        _check_statement(st, idx, diags)


def _check_citation(st: Statement, idx: _Index, diags: list[Diagnostic]) -> None:
    """What can be checked without the tree: the block exists, the fragment is short."""
    ref = st.cites
    labels = idx.upstream.labels
    if st.block_path != "?" and labels and ref.label not in labels:
        diags.append(error(f"citation {st.id} names '{ref.label}', which is not a normative block "
                           f"of {known.BASE}", ref.where_pos, width=len(ref.label) + 2,
                           hint=_near_label(ref.label, labels)))
    if ref.at is not None and len(ref.at.split()) > limits.MAX_CITE_WORDS:
        diags.append(error(f"the fragment of citation {st.id} has {len(ref.at.split())} words; "
                           f"quote at most {limits.MAX_CITE_WORDS}", ref.at_pos,
                           width=len(ref.at) + 2,
                           hint="the statement's wording stays upstream: quote just enough words "
                                "to pick it out, or give its number"))


def _check_statement(st: Statement, idx: _Index, diags: list[Diagnostic]) -> None:
    width = len(st.id)
    found = [w for w in st.text.words if w.text in KEYWORDS]
    distinct = sorted({w.text for w in found})
    if st.text.pieces:
        if not found:
            diags.append(error(f"normative statement {st.id} has no RFC 2119 keyword", st.text.pos,
                               hint="state it with MUST, MUST NOT, SHOULD, SHOULD NOT or MAY, "
                                    "or move the sentence out of the requirements block"))
        elif st.keyword_declared and st.keyword not in distinct:
            diags.append(error(f"{st.id} is declared {st.keyword} but its text says "
                               f"{' and '.join(distinct)}", st.pos, width=width))
        elif st.keyword_declared and distinct == [st.keyword]:
            diags.append(warning(f"{st.id}: the keyword is written twice, after the id and in "
                                 "the text", st.pos, width=width,
                                 hint=f"the text carries the keyword: write `req {st.id} {{` and "
                                      "declare a keyword only when the text uses several"))
        elif not st.keyword_declared and len(distinct) > 1:
            diags.append(error(f"{st.id} uses {', '.join(distinct)}: declare which one the statement is",
                               st.pos, width=width, hint=f"write: req {st.id} {distinct[0]} {{ ... }}"))
    for w in st.text.words:
        if w.text in ("SHALL", "SHALL NOT"):
            diags.append(error(f"'{w.text}' is not used in virtio; write MUST", w.pos, width=len(w.text)))
        elif _is_slip(w.text):
            diags.append(warning(f"lower-case '{w.text}' in normative statement {st.id}", w.pos,
                                 width=len(w.text), hint=f"did you mean {w.text.upper()}?"))
    if st.condition is not None:
        for w in st.condition.words:
            if w.text in _UPPER_KEYWORDS:
                diags.append(error(f"RFC 2119 keyword '{w.text}' in the condition of {st.id}", w.pos,
                                   width=len(w.text), hint="the condition says when; the text says what"))
    if not st.checks and st.untestable is None:
        diags.append(error(f"requirement {st.id} has neither checks nor 'untestable'", st.pos,
                           width=width, hint='add a check { ... } or untestable "why no observation can decide it"'))
    elif st.checks and st.untestable is not None:
        diags.append(error(f"requirement {st.id} has checks and is also marked untestable", st.pos,
                           width=width, hint="remove one of them"))
    if st.untestable is not None and not st.untestable.pieces:
        diags.append(error(f"'untestable' of {st.id} gives no reason", st.untestable.pos))
    for c in st.checks:
        _check_check(c, idx, diags)


def _check_check(c: Check, idx: _Index, diags: list[Diagnostic]) -> None:
    # negotiate accepts offered features only: without a matching
    # `given offered`, a device lacking the feature fails the vector instead
    # of skipping it
    offered = {f for p in c.preconditions if p.verb == "offered" for f in p.positional()}
    devices = {d for p in c.preconditions if p.verb == "device" for d in p.positional()}
    for step in c.steps:
        need = actions.required_device(step.verb)
        if need is not None and devices != {need}:
            diags.append(error(f"'{step.verb}' needs a {need} device, but check {c.name} does not "
                               f"say 'given device {need}'", step.pos, width=len(step.verb),
                               hint=f"add: given device {need}"))
            break
    for step in c.steps:
        if step.kind == "action" and step.verb == "negotiate":
            for a in step.args:
                if a.value not in offered and a.value != "VIRTIO_F_VERSION_1" and \
                        a.value in idx.feature_names:
                    diags.append(warning(f"check {c.name} negotiates {a.value} without "
                                         f"'given offered {a.value}'", a.pos, width=len(a.value),
                                         hint="devices that do not offer it would fail the vector "
                                              "instead of skipping it"))
    for step in c.preconditions + c.steps:
        verb = actions.lookup(step.kind, step.verb)
        if verb is None:
            continue
        positional = [p for p in verb.params if p.positional]
        named = {p.name: p for p in verb.params if not p.positional}
        pi = 0
        for a in step.args:
            if a.name is not None:
                param = named.get(a.name)
            else:
                param = positional[min(pi, len(positional) - 1)] if positional else None
                if param is not None and not param.repeat:
                    pi += 1
            if param is None:
                continue
            if param.type == "feature" and a.value not in idx.feature_names:
                diags.append(error(f"unknown feature {a.value} in check {c.name}", a.pos,
                                   width=len(a.value), hint=_near(a.value, idx.feature_names)))
            elif param.type == "field":
                base = a.value.split(".")[-1]
                if base not in idx.field_names and base not in idx.upstream.fields:
                    diags.append(error(f"unknown field '{a.value}' in check {c.name}", a.pos,
                                       width=len(a.value)))


# ---- prose: references, keywords, slips ---------------------------------------------------

def _module_prose(m: Module) -> Iterator[tuple[Prose, bool]]:
    """Every prose of the module, with True when it is normative statement text."""
    for p in m.prose:
        yield p, False
    for f in m.features:
        for p in f.prose:
            yield p, False
    for c in m.constants:
        for p in c.prose:
            yield p, False
    for s in m.structs:
        for p in s.prose:
            yield p, False
        for fl in s.fields:
            if fl.prose is not None:
                yield fl.prose, False
    for top in m.sections:
        for sec in top.walk():
            for item in sec.items:
                if isinstance(item, (Paragraph, Note)):
                    yield item.prose, False
    for r in m.reused:
        yield from ((p, False) for p in r.prose)
        yield from ((f.prose, False) for f in r.fills)
    for ref in m.references:
        if ref.text is not None:
            yield ref.text, False
    for a in m.amendments:
        for e in a.edits:
            if e.new is not None:
                yield e.new, a.statement is not None or a.label.startswith(
                    ("drivernormative:", "devicenormative:"))
    for st in m.all_statements():
        if any(a.statement is st for a in m.amendments):
            continue
        yield st.text, True
        if st.condition is not None:
            yield st.condition, True
        if st.untestable is not None:
            yield st.untestable, False


def _check_prose(m: Module, idx: _Index, diags: list[Diagnostic]) -> None:
    for prose, normative in _module_prose(m):
        for ref in prose.refs():
            problem = _resolve(ref, idx)
            if problem:
                msg, hint = problem
                diags.append(error(msg, ref.pos, hint=hint, width=len(ref.kind) + 1))
        for w in prose.words:
            if _is_feature_word(w.text):
                if w.text not in idx.feature_names:
                    diags.append(error(f"unknown feature {w.text}", w.pos, width=len(w.text),
                                       hint=_near(w.text, idx.feature_names)))
            elif not normative:
                if w.text in _UPPER_KEYWORDS:
                    diags.append(error(f"RFC 2119 keyword '{w.text}' outside a normative statement",
                                       w.pos, width=len(w.text),
                                       hint="move the sentence into a driver/device requirements block, "
                                            "or reword it"))
                else:
                    diags.append(error(f"'{w.text}' outside a normative statement reads as an "
                                       "RFC 2119 keyword", w.pos, width=len(w.text),
                                       hint="write 'can', 'needs to' or 'is expected to', or make it a "
                                            "requirement"))


def _resolve(ref: Ref, idx: _Index) -> tuple[str, str | None] | None:
    t = ref.target
    up = idx.upstream
    if ref.kind == "feature":
        if t not in idx.feature_names:
            return f"unresolved reference to feature {t}", _near(t, idx.feature_names)
    elif ref.kind == "field":
        if "." in t:
            sname, fname = t.split(".", 1)
            s = idx.structs.get(sname)
            if s is None and sname in idx.reused:
                if fname not in up.fields and idx.reused[sname].fill(fname) is None:
                    return f"unresolved reference to field {t}: {known.BASE} has no field {fname}", None
                return None
            if s is None:
                return f"unresolved reference to field {t}: no structure {sname}", _near(sname, idx.structs)
            if s.field(fname) is None:
                return (f"unresolved reference to field {t}: {sname} has no field {fname}",
                        _near(fname, [f.name for f in s.fields]))
        elif t not in idx.field_names and t not in up.fields:
            return f"unresolved reference to field {t}", _near(t, idx.field_names | up.fields)
    elif ref.kind == "section":
        label = "sec:" + t
        if label not in idx.section_labels and label not in up.labels:
            return f"unresolved reference to section '{t}'", _near_label(label, set(idx.section_labels) | up.labels)
    elif ref.kind == "req":
        if t not in idx.req_ids:
            return f"unresolved reference to requirement {t}", _near(t, idx.req_ids)
    elif ref.kind == "cite":
        if t not in idx.references and reference_label(t) not in up.labels:
            return (f"unresolved citation {t}: no reference entry in the modules or {known.BASE}",
                    f'add: reference {t} {{ normative """Authors, "Title", ...""" url "https://..." }}')
    return None


# ---- placement ------------------------------------------------------------------------------

def needs_placement(m: Module) -> bool:
    """Whether the module adds anything that placement must put somewhere
    (amendments and bibliography entries find their own place)."""
    return bool(m.features or m.constants or m.sections or m.blocks or m.conformance)


def _check_placement(m: Module, idx: _Index, diags: list[Diagnostic]) -> None:
    up = idx.upstream
    if m.kind not in ("proposal", "baseline"):
        return
    if m.kind == "baseline":
        for p in m.placements:
            diags.append(error("a baseline module has no placement: it restates upstream text",
                               p.pos, hint="remove the placement block, or make the module a proposal"))
        for c in m.conformance:
            diags.append(error("a baseline module lists no conformance entries", c.pos))
        return
    if not m.has_placement and not needs_placement(m):
        return
    if not m.has_placement:
        diags.append(error(f"proposal '{m.name}' has no placement block: nothing says where its "
                           "parts land in the upstream tree or which conformance clause lists "
                           "its requirements", m.pos, width=len(m.name),
                           hint="add placement { ... }; see docs/dsl.md"))
        return
    # parts that must be placed exactly once
    wanted: dict[tuple[str, str], tuple[str, SourcePos | None]] = {}
    for f in m.features:
        wanted[("feature", f.name)] = (f"feature {f.name}", f.pos)
        if f.scope == DEVICE_INDEPENDENT and f.bit is not None and \
                known.in_ranges(f.bit, known.FUTURE_RANGES):
            wanted[("allocation", f.name)] = (f"the allocation-list update for {f.name} (bit {f.bit} "
                                              "leaves the future-extensions range)", f.pos)
        for t in f.unsupported:
            wanted[("unsupported", f"{f.name} on {t}")] = (f"{f.name} in the {t} list of features "
                                                            "reserved for future use", f.pos)
    for c in m.constants:
        wanted[("constant", c.name)] = (f"constant {c.name}", c.pos)
    for s in m.sections:
        wanted[("section", s.title_path)] = (f"section '{s.title_path}'", s.pos)
    for b in m.blocks:
        wanted[("block", f"{b.role}:{b.path}")] = (f"block '{b.label}'", b.pos)
    counts: dict[tuple[str, str], list] = defaultdict(list)
    for p in m.placements:
        key = (p.part_kind, f"{p.role}:{p.target}" if p.part_kind == "block" else p.target)
        if key not in wanted and p.part_kind == "allocation" and \
                any(f.name == p.target for f in m.features):
            diags.append(error(f"{p.target} needs no allocation-list change: only a bit taken from "
                               "the future-extensions range (44 to 49, 128 and above) moves", p.pos))
            continue
        if key not in wanted:
            what = p.part_kind if p.part_kind != "block" else f"{p.role} requirements"
            diags.append(error(f"placement names {what} '{p.target}', which this module does not declare",
                               p.pos, hint=_near(p.target, [k[1] for k in wanted if k[0] == key[0]])))
            continue
        counts[key].append(p)
        _check_anchor(p, up, diags)
    for key, (what, pos) in wanted.items():
        n = len(counts.get(key, ()))
        if n == 0:
            diags.append(error(f"{what} is not placed in the upstream tree", pos,
                               hint="add a line for it to the placement block"))
        elif n > 1:
            for extra in counts[key][1:]:
                diags.append(error(f"{what} is placed {n} times", extra.pos,
                                   hint=f"first placed at {counts[key][0].pos}"))
    # every normative block: placed once (through its section, or itself)
    for top in m.sections:
        n = len(counts.get(("section", top.title_path), ()))
        if n != 1:
            for b in top.blocks():
                diags.append(error(f"normative block '{b.label}' is placed {n} times "
                                   f"(through section '{top.title_path}')", b.pos))
    # conformance listings
    listed: dict[str, list] = defaultdict(list)
    blocks = {b.label: b for b in m.all_blocks()}
    for c in m.conformance:
        b = blocks.get(c.block_label)
        if b is None:
            diags.append(error(f"conformance entry names '{c.block_label}', which this module does "
                               "not declare", c.pos, hint=_near(c.block_label, blocks)))
            continue
        listed[c.block_label].append(c)
        clause_label = "sec:" + c.clause
        if not c.clause.startswith("Conformance /") or clause_label not in up.labels:
            clauses = {l[4:] for l in up.labels if l.startswith("sec:Conformance /")}
            diags.append(error(f"unknown conformance clause '{c.clause}'", c.pos,
                               hint=_near_label(c.clause, clauses)))
        else:
            other = "Device" if c.role == "driver" else "Driver"
            if f"{other} Conformance" in c.clause:
                diags.append(error(f"{c.role} block '{c.block_path}' listed in {other.lower()} clause "
                                   f"'{c.clause}'", c.pos))
            block_tp = next((w for part, w in _TRANSPORT_CLAUSES if part in c.block_path), None)
            last = c.clause.split(" / ")[-1]
            clause_tp = next((w for _, w in _TRANSPORT_CLAUSES if last.startswith(w + " ")), None)
            if block_tp != clause_tp:
                where = f"a {block_tp} transport section" if block_tp else "no transport section"
                want = f"a {block_tp} conformance clause" if block_tp else \
                    "a clause that is not a transport's"
                diags.append(warning(f"block '{c.block_path}' is in {where} but listed in "
                                     f"clause '{c.clause}'", c.pos, hint=f"list it in {want}"))
    for label, b in blocks.items():
        n = len(listed.get(label, ()))
        if not b.standalone and n != 1:
            diags.append(error(f"normative block '{label}' is listed in {n} conformance clauses",
                               b.pos, hint="list each new block in exactly one clause: "
                                           f'conformance {b.role} "{b.path}" -> "Conformance / ..."'))
        elif b.standalone and n > 1:
            diags.append(error(f"normative block '{label}' is listed in {n} conformance clauses", b.pos))


def _check_anchor(p, up: known.UpstreamIndex, diags: list[Diagnostic]) -> None:
    if up.files and p.file not in up.files:
        diags.append(error(f"'{p.file}' is not a file of {known.BASE}", p.pos,
                           hint=_near(p.file, up.files)))
    if p.anchor_kind == "label" and p.anchor not in up.labels:
        diags.append(error(f"anchor label '{p.anchor}' does not exist in {known.BASE}", p.pos,
                           hint=_near_label(p.anchor, up.labels)))


# ---- amendments, reuse, rendering ---------------------------------------------------------

# Amendments locate upstream text by quoting it: a few words, never whole sentences.
MAX_FRAGMENT_WORDS = 12


def _check_amendments(m: Module, idx: _Index, diags: list[Diagnostic]) -> None:
    """What can be checked without the tree: where the amendment points, and its statement."""
    up = idx.upstream
    for a in m.amendments:
        if m.kind != "proposal":
            diags.append(error("only a proposal amends upstream text", a.pos,
                               hint="a baseline restates upstream rules; make the module a proposal"))
        label = a.label
        if a.unit == "statement" and not label.startswith(("drivernormative:", "devicenormative:")):
            continue    # reported by the parser
        if up.labels and label not in up.labels:
            diags.append(error(f"amendment names '{label}', which is not a label of {known.BASE}",
                               a.where_pos, hint=_near_label(label, up.labels)))
        quoted = [(a.at, a.at_pos)] + [(e.fragment, e.pos) for e in a.edits]
        for frag, pos in quoted:
            if len(frag.split()) > MAX_FRAGMENT_WORDS:
                diags.append(warning(f"a quoted fragment of {len(frag.split())} words: quote a "
                                     f"short locating fragment (at most {MAX_FRAGMENT_WORDS} words)",
                                     pos, width=len(frag) + 2,
                                     hint="the rest of the upstream wording is read from the tree; "
                                          "the repository holds only our own words"))
        for e in a.edits:
            if e.new is not None:
                for w in e.new.words:
                    if _is_feature_word(w.text) and w.text not in idx.feature_names:
                        diags.append(error(f"unknown feature {w.text}", w.pos, width=len(w.text)))
        if a.statement is not None:
            st = a.statement
            for w in st.text.words:
                if w.text in ("SHALL", "SHALL NOT"):
                    diags.append(error(f"'{w.text}' is not used in virtio; write MUST", w.pos,
                                       width=len(w.text)))
            if not st.checks and st.untestable is None:
                diags.append(error(f"amended requirement {st.id} has neither checks nor 'untestable'",
                                   st.pos, width=len(st.id),
                                   hint='add a check { ... } or untestable "why no observation can decide it"'))
            elif st.checks and st.untestable is not None:
                diags.append(error(f"amended requirement {st.id} has checks and is also marked "
                                   "untestable", st.pos, width=len(st.id)))
            for c in st.checks:
                _check_check(c, idx, diags)


def _check_rendered(m: Module, diags: list[Diagnostic]) -> None:
    """A declaration no emitter renders is a warning: nothing may be dropped silently."""
    shown = {item.name for top in m.sections for sec in top.walk() for item in sec.items
             if isinstance(item, StructRef)}
    for s in m.structs:
        if s.name not in shown and m.kind == "proposal":
            diags.append(warning(f"structure {s.name} is declared but no section shows it, so "
                                 "the patch does not render it", s.pos,
                                 width=len(s.name), hint=f"add `show {s.name}` to a section"))
    for r in m.reused:
        if r.name not in shown:
            diags.append(warning(f"reused structure {r.name} is not shown by any section, so the "
                                 "fields it fills are never rendered", r.pos, width=len(r.name),
                                 hint=f"add `show {r.name}` to a section"))


# A block under a transport's chapter is listed in that transport's clause.
_TRANSPORT_CLAUSES = (("Virtio Over PCI Bus", "PCI"), ("Virtio Over MMIO", "MMIO"),
                      ("Virtio over channel I/O", "Channel I/O"))


# ---- helpers -----------------------------------------------------------------------------------

def _near(name: str, candidates) -> str | None:
    names = [str(c) for c in candidates]
    match = difflib.get_close_matches(name, names, n=1, cutoff=0.75)
    return f"did you mean '{match[0]}'?" if match else None


def _near_label(label: str, labels) -> str | None:
    # labels are long and case-sensitive: compare case-insensitively first
    lowered = {l.lower(): l for l in labels}
    if label.lower() in lowered:
        return f"labels are case-sensitive: upstream has '{lowered[label.lower()]}'"
    match = difflib.get_close_matches(label, list(labels), n=1, cutoff=0.8)
    return f"did you mean '{match[0]}'?" if match else None
