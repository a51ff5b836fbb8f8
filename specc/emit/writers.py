"""Write emitted text to files: the output edge shared by the commands."""
from __future__ import annotations

import json
from pathlib import Path

from specc.emit.rst import module_rst, SiteIndex
from specc.emit.schema_check import errors, load_schema
from specc.emit.vectors import display_path, dumps, module_vectors
from specc.model import Module
from specc.upstream.tree import SpecTree


class EmitError(Exception):
    """Output that fails its own schema: a bug in an emitter (one line)."""


def write_vectors(modules: list[Module], out: Path) -> list[Path]:
    """One JSON file per module with at least one check, validated before writing."""
    schema = load_schema("vectors.schema.json")
    docs = []
    for m in modules:
        if not any(True for _ in m.all_checks()):
            continue
        doc = module_vectors(m, Path(m.file).read_bytes(), display_path(m.file))
        text = dumps(doc)
        problems = errors(json.loads(text), schema)
        if problems:
            raise EmitError(f"vectors for {m.name} fail their schema: {problems[0]}")
        docs.append((out / f"{m.name}.json", text))
    for path, text in docs:
        path.write_text(text, encoding="utf-8")
    return [p for p, _ in docs]


def write_rst(modules: list[Module], out: Path, tree: SpecTree | None = None) -> list[Path]:
    idx = SiteIndex.of(modules)
    written = []
    for m in modules:
        path = out / f"{m.name}.rst"
        path.write_text(module_rst(m, idx, tree=tree), encoding="utf-8")
        written.append(path)
    return written
