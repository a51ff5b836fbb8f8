"""Load, check and compare with the id registry: the front half every
specc command shares (check, dump, ids, and the emitters' commands)."""
from __future__ import annotations

import gc
import os
from collections import Counter
from contextlib import contextmanager
from dataclasses import dataclass, field

from specc import registry as reg
from specc.checks import check_modules
from specc.citations import resolve_citations
from specc.diagnostics import Diagnostic, render_all
from specc.load import load
from specc.model import KEYWORDS, Module
from specc.tree_checks import check_against_tree
from specc.upstream.statements import UpstreamStatement
from specc.upstream.tree import SpecTree


@dataclass
class CheckResult:
    modules: list[Module] = field(default_factory=list)
    diagnostics: list[Diagnostic] = field(default_factory=list)
    sources: dict[str, str] = field(default_factory=dict)
    registry_path: str | None = None
    fatal: str | None = None          # a one-line problem that stops everything
    cited: dict[str, UpstreamStatement] | None = None   # citations resolved (with a tree)

    @property
    def ok(self) -> bool:
        return self.fatal is None and not any(d.is_error for d in self.diagnostics)

    def render(self) -> str:
        return render_all(self.diagnostics, self.sources)


@contextmanager
def _no_cycle_collection():
    # Parse trees and the model are acyclic, so reference counting frees them;
    # the cyclic collector would only rescan a heap that grows with the spec,
    # which makes checking a large spec slower than linear.
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def check_files(files: list[str], registry: str | None = None,
                use_registry: bool = True, tree: SpecTree | None = None) -> CheckResult:
    """Parse files and run every check (against `tree` too, when given); never
    raises for bad input."""
    with _no_cycle_collection():
        loaded = load(files)
        result = CheckResult(loaded.modules, list(loaded.diagnostics), loaded.sources)
        result.diagnostics += check_modules(loaded.modules)
        if tree is not None and not any(d.is_error for d in loaded.diagnostics):
            result.cited, cite_diags = resolve_citations(loaded.modules, tree)
            result.diagnostics = with_tree_diagnostics(result.diagnostics,
                                                       check_against_tree(loaded.modules, tree)
                                                       + cite_diags)
    if use_registry:
        path = registry or reg.default_path(files)
        if path and (registry or os.path.isfile(path)):
            result.registry_path = path
            try:
                entries = reg.read(path)
            except reg.RegistryError as exc:
                result.fatal = str(exc)
                return result
            result.diagnostics += reg.check(loaded.modules, entries, path, result.cited)
            result.modules = reg.with_upstream(result.modules, entries)
    return result


def with_tree_diagnostics(diags: list[Diagnostic], from_tree: list[Diagnostic]) -> list[Diagnostic]:
    """Add the tree's findings; one at the same place as a built-in error replaces it
    (it says the same and names the upstream file and line)."""
    places = {d.pos for d in from_tree if d.is_error}
    return [d for d in diags if not (d.is_error and d.pos in places)] + from_tree


def summary_line(result: CheckResult) -> str:
    mods = result.modules
    statements = [st for m in mods for st in m.all_statements()]
    kw = Counter(st.keyword for st in statements)
    by_kw = ", ".join(f"{k} {kw[k]}" for k in KEYWORDS if kw.get(k))
    checks = sum(len(st.checks) for st in statements)
    untestable = sum(1 for st in statements if st.untestable is not None)
    features = sum(len(m.features) for m in mods)
    errors = sum(1 for d in result.diagnostics if d.is_error)
    warnings = len(result.diagnostics) - errors
    return (f"{_n(len(mods), 'module')}, {_n(features, 'feature')}, "
            f"{_n(len(statements), 'normative statement')}" + (f" ({by_kw})" if by_kw else "") +
            f", {_n(checks, 'check')}, {untestable} untestable; "
            f"{_n(errors, 'error')}, {_n(warnings, 'warning')}")


def _n(n: int, word: str) -> str:
    return f"{n} {word}" + ("" if n == 1 else "s")
