"""Vectors for the conformance tests, compiled from the project's spec
sources once per session (tests may import specc; the package may not)."""
from __future__ import annotations

import glob
import json
import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def compile_vectors(out: Path, files: list[str] | None = None) -> Path:
    from specc.emit.vectors import display_path, dumps, module_vectors
    from specc.load import load

    files = files or sorted(glob.glob(str(ROOT / "spec" / "*.vspec")))
    loaded = load(files)
    errors = [d for d in loaded.diagnostics if d.is_error]
    assert not errors, [str(d) for d in errors[:3]]
    out.mkdir(parents=True, exist_ok=True)
    for m, path in zip(loaded.modules, files):
        doc = module_vectors(m, Path(path).read_bytes(), display_path(path))
        (out / f"{m.name}.json").write_text(dumps(doc))
    return out


@pytest.fixture(scope="session")
def vectors_dir(tmp_path_factory) -> Path:
    return compile_vectors(tmp_path_factory.mktemp("vectors"))


@pytest.fixture(scope="session")
def suite(vectors_dir):
    from conformance.vectors import load_suite
    return load_suite(vectors_dir)


def load_json(path: Path) -> dict:
    return json.loads(path.read_text())
