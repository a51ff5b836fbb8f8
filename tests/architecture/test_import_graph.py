"""The import graph of specc, device_ref and conformance: no cycles, no
function-level imports of project modules, and specc apart from the runtime.

Computed with ``ast`` from the sources (module-level and function-level
imports alike), so an import hidden inside a function still counts.
"""
from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("specc", "device_ref", "conformance")


def _modules() -> dict[str, Path]:
    out = {}
    for pkg in PACKAGES:
        for path in (ROOT / pkg).rglob("*.py"):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            out[".".join(parts)] = path
    return out


def _extensions() -> set[str]:
    """Compiled extension modules (built by cffi): not Python sources to check."""
    out = set()
    for pkg in PACKAGES:
        for path in (ROOT / pkg).rglob("*.so"):
            rel = path.relative_to(ROOT)
            out.add(".".join([*rel.parent.parts, path.name.split(".", 1)[0]]))
    return out


EXTENSIONS = _extensions()


def _resolve(name: str, modules: dict[str, Path]) -> str | None:
    """The project module an imported name lives in (longest known prefix)."""
    if name in EXTENSIONS:
        return None
    parts = name.split(".")
    while parts:
        cand = ".".join(parts)
        if cand in modules:
            return cand
        parts.pop()
    return None


def _imports(module: str, path: Path, modules: dict[str, Path]):
    """(target module, line, at module level?) for each project import."""
    tree = ast.parse(path.read_text("utf-8"), str(path))
    top = set()
    for node in tree.body:
        top.add(id(node))
        if isinstance(node, (ast.If, ast.Try)):
            for sub in ast.walk(node):
                top.add(id(sub))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(tree):
        names = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[:len(anchor) - (node.level - 1)]
                base = ".".join(anchor + ([base] if base else []))
            names = [f"{base}.{a.name}" for a in node.names] if base else []
        for n in names:
            target = _resolve(n, modules)
            if target is not None and target != module:
                yield target, node.lineno, id(node) in top


def _graph():
    modules = _modules()
    edges: dict[str, set[str]] = {m: set() for m in modules}
    nested = set()
    for m, path in modules.items():
        for target, line, at_top in _imports(m, path, modules):
            edges[m].add(target)
            if not at_top:
                nested.add(f"{path.relative_to(ROOT)}:{line} imports {target} inside a function")
    return edges, sorted(nested)


def _cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out = []
    counter = 0
    for root in edges:
        if root in index:
            continue
        work = [(root, iter(sorted(edges[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on.add(root)
        while work:
            node, it = work[-1]
            for nxt in it:
                if nxt not in index:
                    index[nxt] = low[nxt] = counter
                    counter += 1
                    stack.append(nxt)
                    on.add(nxt)
                    work.append((nxt, iter(sorted(edges[nxt]))))
                    break
                if nxt in on:
                    low[node] = min(low[node], index[nxt])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    comp = []
                    while True:
                        x = stack.pop()
                        on.discard(x)
                        comp.append(x)
                        if x == node:
                            break
                    if len(comp) > 1:
                        out.append(sorted(comp))
    return out


def test_no_import_cycles():
    edges, _ = _graph()
    assert _cycles(edges) == []


def test_no_function_level_imports_of_project_modules():
    _, nested = _graph()
    assert nested == []


def test_specc_and_the_runtime_stay_apart():
    edges, _ = _graph()
    crossing = [f"{a} -> {b}" for a, targets in edges.items() for b in targets
                if a.startswith("specc") != b.startswith("specc")]
    assert crossing == []


def test_the_checker_sees_a_cycle_and_a_nested_import(tmp_path):
    """Guard against a vacuous check: a planted cycle and nested import are found."""
    edges = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}
    assert _cycles(edges) == [["a", "b", "c"]]
    pkg = tmp_path / "p.py"
    pkg.write_text("import os\ndef f():\n    from specc import model\n")
    found = list(_imports("conformance.x", pkg, {"specc.model": pkg, "conformance.x": pkg}))
    assert found == [("specc.model", 3, False)]
