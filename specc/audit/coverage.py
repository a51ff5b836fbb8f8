"""How much of an upstream spec tree our modules restate and our vectors test.

Restated: an upstream normative block whose label a *baseline* module's
top-level block carries (a proposal's top-level block extends an upstream
block instead; those are counted apart). Tested: a restated block that a
conformance vector group names (by its label, or by the id of a requirement
whose label it is), in a group with at least one test. Without vector files,
a restated block counts as tested when one of its statements has a check
(checks are what the vectors are compiled from).
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from specc.cli_base import CliError
from specc.upstream.tree import SpecTree


@dataclass
class Figures:
    blocks: int = 0
    blocks_restated: int = 0
    blocks_tested: int = 0
    keywords: int = 0
    keywords_restated: int = 0
    keywords_tested: int = 0

    def add(self, n_kw: int, restated: bool, tested: bool) -> None:
        self.blocks += 1
        self.keywords += n_kw
        if restated:
            self.blocks_restated += 1
            self.keywords_restated += n_kw
        if tested:
            self.blocks_tested += 1
            self.keywords_tested += n_kw

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

    def as_json(self) -> dict:
        return {
            "chapters": [{"chapter": c, **f.as_json()} for c, f in self.chapters],
            "totals": self.totals.as_json(),
            "missing": [{"label": lab, "file": f, "line": n, "chapter": c}
                        for lab, f, n, c in self.missing],
            "unknown": list(self.unknown),
        }

    def format_text(self) -> str:
        def pct(a: int, b: int) -> str:
            return f"{100 * a / b:5.1f}%" if b else "    -"
        w = max([len(c) for c, _ in self.chapters] + [len("total")])
        lines = [f"coverage of upstream normative blocks (tested according to {self.tested_from}):",
                 f"  {'chapter':<{w}}  blocks restated tested   keywords restated tested"]
        for name, f in self.chapters + [("total", self.totals)]:
            lines.append(f"  {name:<{w}}  {f.blocks:6} {f.blocks_restated:8} {f.blocks_tested:6}"
                         f"   {f.keywords:8} {f.keywords_restated:8} {f.keywords_tested:6}"
                         f"   ({pct(f.blocks_restated, f.blocks)} restated,"
                         f" {pct(f.blocks_tested, f.blocks)} tested)")
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


def _squash(label: str) -> str:
    return " ".join(label.split())


def _module_claims(spec_dir: str) -> tuple[set[str], set[str], set[str]]:
    """Labels restated by baselines, labels extended by proposals, labels with checks."""
    from specc.load import load

    root = Path(spec_dir)
    if not root.is_dir():
        raise CliError(f"{spec_dir}: no such directory of .vspec modules")
    paths = sorted(str(p) for p in root.rglob("*.vspec"))
    loaded = load(paths)
    errors = [d for d in loaded.diagnostics if d.severity == "error"]
    if errors:
        raise CliError(f"{errors[0].where()}: {errors[0].message} "
                       f"(fix the module: coverage needs every module to load)")
    restated: set[str] = set()
    extended: set[str] = set()
    checked: set[str] = set()
    for m in loaded.modules:
        for b in m.blocks:
            if not b.standalone:
                continue
            (restated if m.kind == "baseline" else extended).add(b.label)
            if m.kind == "baseline" and any(st.checks for st in b.statements):
                checked.add(b.label)
    return restated, extended, checked


def _vector_labels(vectors_dir: str) -> set[str]:
    root = Path(vectors_dir)
    if not root.is_dir():
        raise CliError(f"{vectors_dir}: no such directory of vector files")
    labels: set[str] = set()
    for path in sorted(root.rglob("*.json")):
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise CliError(f"{path}: not a readable JSON vector file ({exc})") from None
        if not isinstance(doc, dict) or doc.get("schema") != "virtio-specc-vectors":
            continue  # other JSON in the directory (e.g. reports) is not a vector file
        reqs = doc.get("requirements") or {}
        for group in doc.get("testGroups") or []:
            if not group.get("tests"):
                continue
            for ref in group.get("requirements") or []:
                if isinstance(ref, dict):
                    if ref.get("label"):
                        labels.add(ref["label"])
                    req = reqs.get(ref.get("id"))
                    if isinstance(req, dict) and req.get("label"):
                        labels.add(req["label"])
    return labels


def coverage_for(tree: SpecTree, spec_dir: str, vectors_dir: str | None) -> Coverage:
    restated, extended, checked = _module_claims(spec_dir)
    tested_labels = _vector_labels(vectors_dir) if vectors_dir else checked
    upstream = {_squash(b.label): b.label for b in tree.blocks}

    def canon(labels: set[str]) -> set[str]:
        return {upstream.get(_squash(lab), lab) for lab in labels}

    restated_c, tested_c = canon(restated), canon(tested_labels)
    chapters: dict[str, Figures] = {}
    totals = Figures()
    missing: list[tuple[str, str, int, str]] = []
    seen: set[str] = set()
    for b in tree.blocks:
        if b.label in seen:
            continue  # one block per label (a duplicate label is an audit finding)
        seen.add(b.label)
        chapter = b.heading.chapter.title
        r = b.label in restated_c
        t = r and b.label in tested_c
        chapters.setdefault(chapter, Figures()).add(len(b.keywords), r, t)
        totals.add(len(b.keywords), r, t)
        if not r:
            missing.append((b.label, b.pos.file, b.pos.line, chapter))
    untested = sorted(lab for lab in restated_c if lab in seen and lab not in tested_c)
    unknown = sorted(lab for lab in canon(restated | extended) if lab not in seen)
    return Coverage(chapters=list(chapters.items()), totals=totals, missing=missing,
                    untested=untested, extended=sorted(canon(extended) & seen), unknown=unknown,
                    tested_from="vectors" if vectors_dir else "the modules' checks")
