"""How much of an upstream spec tree our modules restate and our vectors test.

Blocks. Restated: an upstream normative block whose label a *baseline*
module's top-level block carries, or that holds a statement a module
amends (a proposal's top-level block extends an
upstream block instead; those are counted apart). Tested: a restated block
one of whose statements is tested: named by id (or alias) in a vector
group with at least one test; or, when a group names only the block's
label, every statement of the block. Without vector files, a statement
counts as tested when it has a check (checks are what the vectors are
compiled from).

Keywords. An upstream block's keywords are the RFC 2119 keywords in it. The
restated (tested) keywords of a block are the keywords in our restated
(tested) statements' text, at most the block's own count: our statements
do not map one to one onto upstream sentences, so this counts how much of
the block's normative weight we carry, not which sentence.

Citations. A `cite` picks out one upstream keyword statement, so it counts
exactly: the keywords of that statement are cited, and tested when the
citation is, or untestable when it carries a reason. A block one of whose
statements is cited counts as restated (claimed) too. Untestable keywords
(restated or cited statements with an `untestable` reason) are counted
apart; tested plus untestable is what the modules account for.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from specc.cli_base import CliError
from specc.model import CiteRef
from specc.upstream.statements import CiteError, resolve
from specc.upstream.tree import KEYWORD_RE, SpecTree
from specc.load import load
from specc.model import Module, Statement


@dataclass
class Figures:
    blocks: int = 0
    blocks_restated: int = 0
    blocks_tested: int = 0
    keywords: int = 0
    keywords_restated: int = 0
    keywords_tested: int = 0
    keywords_cited: int = 0
    keywords_untestable: int = 0

    @property
    def accounted(self) -> int:
        """Keywords tested or declared untestable with a reason."""
        return self.keywords_tested + self.keywords_untestable

    def as_json(self) -> dict:
        return dict(self.__dict__)


@dataclass
class Coverage:
    chapters: list[tuple[str, Figures]]
    totals: Figures
    missing: list[tuple[str, str, int, str]]          # label, file, line, chapter
    untested: list[str]                                # restated, not tested
    extended: list[str]                                # upstream blocks proposals add to
    unknown: list[str]                                 # claimed labels the tree lacks
    tested_from: str                                   # "vectors" or "checks"
    blocks: list["BlockCoverage"] = field(default_factory=list)   # every upstream block
    unresolved: list[str] = field(default_factory=list)   # citations the tree cannot resolve

    def as_json(self) -> dict:
        return {
            "chapters": [{"chapter": c, **f.as_json()} for c, f in self.chapters],
            "totals": self.totals.as_json(),
            "missing": [{"label": lab, "file": f, "line": n, "chapter": c}
                        for lab, f, n, c in self.missing],
            "unknown": list(self.unknown),
            "unresolved": list(self.unresolved),
        }

    def format_text(self) -> str:
        def pct(a: int, b: int) -> str:
            return f"{100 * a / b:5.1f}%" if b else "    -"
        w = max([len(c) for c, _ in self.chapters] + [len("total")])
        lines = [f"coverage of upstream normative blocks (tested according to {self.tested_from}):",
                 f"  {'chapter':<{w}}  blocks restated tested   keywords restated  cited tested"
                 f" untestable   accounted  tested/testable"]
        for name, f in self.chapters + [("total", self.totals)]:
            testable = f.keywords - f.keywords_untestable
            lines.append(f"  {name:<{w}}  {f.blocks:6} {f.blocks_restated:8} {f.blocks_tested:6}"
                         f"   {f.keywords:8} {f.keywords_restated:8} {f.keywords_cited:6}"
                         f" {f.keywords_tested:6} {f.keywords_untestable:10}"
                         f"   {pct(f.accounted, f.keywords)}   {pct(f.keywords_tested, testable)}")
        if self.unresolved:
            lines.append("citations this tree does not resolve:")
            lines += [f"  {u}" for u in self.unresolved]
        if self.untested:
            lines.append("restated but not tested:")
            lines += [f"  {lab}" for lab in self.untested]
        if self.extended:
            lines.append("upstream blocks our proposals add statements to:")
            lines += [f"  {lab}" for lab in self.extended]
        if self.unknown:
            lines.append("labels our modules name that the tree does not have:")
            lines += [f"  {lab}" for lab in self.unknown]
        lines.append(f"not restated ({len(self.missing)}):")
        lines += [f"  {f}:{n}: {lab}" for lab, f, n, _ in self.missing]
        return "\n".join(lines)


@dataclass(frozen=True)
class StatementCoverage:
    """One of our statements on an upstream block: how it is tied to it and tested."""
    id: str
    module: str
    how: str                       # "restates", "amends", "cites" or "extends" (a proposal's)
    tested: bool
    untestable: str | None         # the reason, when the statement says it cannot be tested
    cites: str | None = None       # for a citation: which upstream statement it picks out


@dataclass(frozen=True)
class BlockCoverage:
    """One upstream normative block and our statements on it (the coverage page's row)."""
    label: str
    file: str
    line: int
    chapter: str
    keywords: int
    statements: tuple[StatementCoverage, ...]

    @property
    def status(self) -> str:
        """tested; untestable (every statement on it says why); restated (not
        tested); or missing (no module restates or cites it)."""
        own = [s for s in self.statements if s.how != "extends"]
        if not own:
            return "missing"
        if any(s.tested for s in own):
            return "tested"
        return "untestable" if all(s.untestable is not None for s in own) else "restated"


def _squash(label: str) -> str:
    return " ".join(label.split())


@dataclass
class _Restated:
    """One baseline statement restating (or citing) an upstream block."""
    ids: frozenset[str]            # id and aliases
    keywords: int                  # RFC 2119 keywords in its text
    checked: bool
    id: str = ""
    module: str = ""
    how: str = "restates"          # restates, amends, extends (a proposal's addition) or cites
    untestable: str | None = None  # the reason, when the statement says it cannot be tested
    cites: CiteRef | None = None   # a citation: its keywords are the upstream statement's


def _load_modules(spec_dir: str) -> list[Module]:
    root = Path(spec_dir)
    if not root.is_dir():
        raise CliError(f"{spec_dir}: no such directory of .vspec modules")
    paths = sorted(str(p) for p in root.rglob("*.vspec"))
    loaded = load(paths)
    errors = [d for d in loaded.diagnostics if d.severity == "error"]
    if errors:
        raise CliError(f"{errors[0].where()}: {errors[0].message} "
                       f"(fix the module: coverage needs every module to load)")
    return list(loaded.modules)


def _untestable(st: Statement) -> str | None:
    return st.untestable.plain() if st.untestable is not None else None


def _module_claims(modules: list[Module]) -> tuple[dict[str, list[_Restated]],
                                                   dict[str, list[_Restated]]]:
    """Statements per upstream label restated by baselines; statements proposals add, by label."""
    restated: dict[str, list[_Restated]] = {}
    extended: dict[str, list[_Restated]] = {}
    for m in modules:
        # An amended upstream statement carries its block's wording (changed),
        # so it counts for that block like a restated one: one keyword, its own.
        for a in m.amendments:
            st = a.statement
            if st is not None:
                restated.setdefault(f"{st.role}normative:{st.block_path}", []).append(
                    _Restated(ids=frozenset((st.id, *st.aliases)), keywords=1,
                              checked=bool(st.checks), id=st.id, module=m.name,
                              how="amends", untestable=_untestable(st)))
        for st in m.citations:
            restated.setdefault(st.cites.label, []).append(
                _Restated(ids=frozenset((st.id, *st.aliases)), keywords=0, checked=bool(st.checks),
                          id=st.id, module=m.name, how="cites", untestable=_untestable(st),
                          cites=st.cites))
        for b in m.blocks:
            if not b.standalone:
                continue
            proposal = m.kind != "baseline"
            lst = (extended if proposal else restated).setdefault(b.label, [])
            for st in b.statements:
                lst.append(_Restated(ids=frozenset((st.id, *st.aliases)),
                                     keywords=len(KEYWORD_RE.findall(st.text.plain())),
                                     checked=bool(st.checks), id=st.id, module=m.name,
                                     how="extends" if proposal else "restates",
                                     untestable=_untestable(st)))
    return restated, extended


def _vector_tests(vectors_dir: str) -> tuple[set[str], set[str]]:
    """Requirement ids and labels named by vector groups that hold at least one test."""
    root = Path(vectors_dir)
    if not root.is_dir():
        raise CliError(f"{vectors_dir}: no such directory of vector files")
    ids: set[str] = set()
    labels: set[str] = set()
    for path in sorted(root.rglob("*.json")):
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise CliError(f"{path}: not a readable JSON vector file ({exc})") from None
        except RecursionError:
            raise CliError(f"{path}: nests too deeply to be a vector file") from None
        if not isinstance(doc, dict) or doc.get("schema") != "virtio-specc-vectors":
            continue  # other JSON in the directory (e.g. reports) is not a vector file
        reqs = doc.get("requirements") or {}
        for group in doc.get("testGroups") or []:
            if not isinstance(group, dict) or not group.get("tests"):
                continue
            for ref in group.get("requirements") or []:
                if not isinstance(ref, dict):
                    continue
                if ref.get("id") and isinstance(ref["id"], str):
                    ids.add(ref["id"])
                    req = reqs.get(ref["id"])
                    if isinstance(req, dict) and req.get("label"):
                        labels.add(req["label"])
                if ref.get("label") and isinstance(ref["label"], str):
                    labels.add(ref["label"])
    return ids, labels


def coverage_for(tree: SpecTree, spec_dir: str, vectors_dir: str | None) -> Coverage:
    """Coverage of `tree` by the modules in `spec_dir` (tested by the vectors in `vectors_dir`)."""
    return coverage_of(tree, _load_modules(spec_dir), vectors_dir)


def coverage_of(tree: SpecTree, modules: list[Module], vectors_dir: str | None) -> Coverage:
    """Coverage of `tree` by loaded modules (`specc docs` has them already)."""
    restated_raw, extended_raw = _module_claims(modules)
    extended = set(extended_raw)
    upstream = {_squash(b.label): b.label for b in tree.blocks}

    def canon(label: str) -> str:
        return upstream.get(_squash(label), label)

    restated: dict[str, list[_Restated]] = {}
    for label, sts in restated_raw.items():
        restated.setdefault(canon(label), []).extend(sts)
    added: dict[str, list[_Restated]] = {}
    for label, sts in extended_raw.items():
        added.setdefault(canon(label), []).extend(sts)
    if vectors_dir:
        tested_ids, tested_labels = _vector_tests(vectors_dir)
        tested_labels = {canon(lab) for lab in tested_labels}

    def tested_statements(label: str) -> list[_Restated]:
        sts = restated.get(label, [])
        return _tested(sts, label)

    def _tested(sts: list[_Restated], label: str) -> list[_Restated]:
        if not vectors_dir:
            return [s for s in sts if s.checked]
        hit = [s for s in sts if s.ids & tested_ids]
        if not hit and label in tested_labels:
            return list(sts)
        return hit

    def rows(label: str) -> tuple[StatementCoverage, ...]:
        out = []
        for group in (restated.get(label, []), added.get(label, [])):
            hit = {id(s) for s in _tested(group, label)}
            out += [StatementCoverage(s.id, s.module, s.how, id(s) in hit, s.untestable,
                                      s.cites.locator if s.cites else None)
                    for s in group]
        return tuple(out)

    unresolved: list[str] = []

    def counted(label: str, sts: list[_Restated]) -> list[tuple[_Restated, tuple[str, int], int]]:
        """Each statement with the keywords it carries and a key: a cited upstream
        statement is counted once however many citations pick it out."""
        out = []
        for i, s in enumerate(sts):
            if s.cites is None:
                out.append((s, ("own", i), s.keywords))
                continue
            try:
                up = resolve(tree, label, s.cites.at, s.cites.index)
            except CiteError as exc:
                unresolved.append(f"{sorted(s.ids)[0]}: {exc.message}")
                continue
            out.append((s, ("cited", up.index), len(up.keywords)))
        return out

    def weight(items, pick) -> int:
        seen_keys: set = set()
        total = 0
        for s, key, n in items:
            if pick(s) and key not in seen_keys:
                seen_keys.add(key)
                total += n
        return total

    chapters: dict[str, Figures] = {}
    totals = Figures()
    missing: list[tuple[str, str, int, str]] = []
    blocks: list[BlockCoverage] = []
    seen: set[str] = set()
    for b in tree.blocks:
        if b.label in seen:
            continue  # one block per label (a duplicate label is an audit finding)
        seen.add(b.label)
        chapter = b.heading.chapter.title
        n_kw = len(b.keywords)
        sts = restated.get(b.label)
        tested = tested_statements(b.label) if sts else []
        items = counted(b.label, sts or [])
        tested_ids = {id(s) for s in tested}
        n_tested = min(n_kw, weight(items, lambda s: id(s) in tested_ids))
        n_untestable = min(n_kw - n_tested, weight(items, lambda s: s.untestable))
        fig = chapters.setdefault(chapter, Figures())
        for f in (fig, totals):
            f.blocks += 1
            f.keywords += n_kw
            if sts:
                f.blocks_restated += 1
                f.keywords_restated += min(n_kw, weight(items, lambda s: s.cites is None))
                f.keywords_cited += min(n_kw, weight(items, lambda s: s.cites is not None))
            if tested:
                f.blocks_tested += 1
            f.keywords_tested += n_tested
            f.keywords_untestable += n_untestable
        if not sts:
            missing.append((b.label, b.pos.file, b.pos.line, chapter))
        blocks.append(BlockCoverage(b.label, b.pos.file, b.pos.line, chapter, n_kw,
                                    rows(b.label)))
    untested = sorted(lab for lab in restated if lab in seen and not tested_statements(lab))
    unknown = sorted(lab for lab in set(restated) | {canon(x) for x in extended} if lab not in seen)
    return Coverage(chapters=list(chapters.items()), totals=totals, missing=missing,
                    untested=untested, extended=sorted({canon(x) for x in extended} & seen),
                    unknown=unknown, unresolved=unresolved,
                    tested_from="vectors" if vectors_dir else "the modules' checks",
                    blocks=blocks)
